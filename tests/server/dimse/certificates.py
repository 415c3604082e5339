"""Throw-away certificate authorities and certificates for the DICOM TLS tests (openssl)."""

from __future__ import annotations

import hashlib
import secrets
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import require_tool


@dataclass(frozen=True)
class Issued:
    """A PEM certificate and its private key."""

    cert: Path
    key: Path

    @property
    def sha256(self) -> str:
        """SHA-256 of the certificate's DER encoding, as pinned to an organisation."""
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        return hashlib.sha256(der).hexdigest()


def _openssl(*args: str) -> None:
    subprocess.run([require_tool("openssl"), *args], check=True, capture_output=True, timeout=60)


def authority(folder: Path, name: str) -> Issued:
    """A self-signed CA certificate."""
    issued = Issued(folder / f"{name}.crt", folder / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-keyout", str(issued.key), "-out", str(issued.cert), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return issued


def issue(folder: Path, ca: Issued, name: str, *, server: bool = False) -> Issued:
    """A leaf certificate signed by ca: a server's for localhost/127.0.0.1, or a client's."""
    issued = Issued(folder / f"{name}.crt", folder / f"{name}.key")
    request = folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    usage = "serverAuth" if server else "clientAuth"
    names = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n" if server else ""
    extensions.write_text(
        f"{names}extendedKeyUsage={usage}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", str(issued.key),
        "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", str(secrets.randbits(63)), "-days", "2", "-sha256",
        "-extfile", str(extensions), "-out", str(issued.cert),
    )  # fmt: skip
    return issued


def client_context(ca: Issued, client: Issued | None) -> ssl.SSLContext:
    """An SCU's TLS context: trusts ca, presents client (if any)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context
