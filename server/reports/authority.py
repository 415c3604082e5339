"""The deployment's signing CA (its own, or an imported one) and the specialists' certificates.

Keys are ECDSA P-256: pdfsig (poppler/NSS) and pyHanko both validate ECDSA signatures, a key
is generated in well under a millisecond (RSA-3072 takes ~100 ms) and signing costs ~0.1 ms.
Private keys are stored as encrypted PKCS#8 PEM; the password is derived from the deployment's
secret key with HKDF-SHA256, so a changed secret key makes them unreadable (and says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

CA_CERTIFICATE_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
LOCK_FILE = ".lock"
CA_VALID_DAYS = 3650
CLOCK_SKEW = timedelta(minutes=5)
PASSWORD_INFO = b"doorstep/reports/signing-key-password/v1"

IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SigningAuthorityError(Exception):
    """The signing CA or a signing key cannot be read, stored or used; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Authority:
    """The CA that issues the specialists' signing certificates."""

    certificate: x509.Certificate
    private_key: IssuerKey

    @property
    def certificate_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """One specialist's signing certificate and key (PKCS#8, encrypted with the secret key)."""

    certificate_pem: bytes
    key_pem: bytes


def _password(*, secret: bytes) -> bytes:
    """The password that encrypts signing keys at rest, derived from the deployment's secret."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PASSWORD_INFO).derive(
        secret
    )
    return derived.hex().encode("ascii")


def fingerprint(certificate_pem: bytes) -> str:
    """SHA-256 of the certificate's DER encoding, lower-case hex."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_or_create_authority(
    *, directory: Path, secret: bytes, common_name: str = "Doorstep Reporting CA"
) -> Authority:
    """The CA stored in `directory`, created there on first use (safe under concurrent callers)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(directory):
        if (directory / CA_CERTIFICATE_FILE).exists():
            return _read(directory=directory, secret=secret)
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _self_signed_ca(key=key, common_name=common_name)
        _store(directory=directory, certificate=certificate, key=key, secret=secret)
        return Authority(certificate=certificate, private_key=key)


def import_authority(
    *,
    directory: Path,
    certificate_pem: bytes,
    key_pem: bytes,
    key_password: bytes | None,
    secret: bytes,
    replace: bool = False,
) -> Authority:
    """Store an operator's CA certificate and key as the signing authority, after checking them."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as error:
        message = f"the CA certificate is not a PEM certificate: {error}"
        raise SigningAuthorityError(message) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=key_password)
    except (ValueError, TypeError) as error:
        raise SigningAuthorityError(
            f"the CA key cannot be read (wrong password or not a PEM key): {error}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SigningAuthorityError("the CA key must be an RSA or ECDSA key")
    _check_ca(certificate=certificate, key=key, now=datetime.now(UTC))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(directory):
        if (directory / CA_CERTIFICATE_FILE).exists() and not replace:
            raise SigningAuthorityError(
                f"a signing CA already exists in {directory}; import with replace to overwrite it"
            )
        _store(directory=directory, certificate=certificate, key=key, secret=secret)
    return Authority(certificate=certificate, private_key=key)


def issue_identity(
    *,
    authority: Authority,
    username: str,
    display_name: str,
    organisation: str,
    secret: bytes,
    now: datetime | None = None,
    valid_days: int = 825,
) -> SigningIdentity:
    """A signing certificate for one specialist (CN, O, UID), issued by the authority."""
    moment = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    organisation_attribute = (
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)] if organisation else []
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, display_name or username),
            *organisation_attribute,
            x509.NameAttribute(NameOID.USER_ID, username),
        ]
    )
    not_after = min(moment + timedelta(days=valid_days), authority.certificate.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(authority.certificate), critical=False)
        .sign(authority.private_key, hashes.SHA256())
    )
    return SigningIdentity(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=_encrypted_key(key=key, secret=secret),
    )


def load_identity_key(*, identity: SigningIdentity, secret: bytes) -> ec.EllipticCurvePrivateKey:
    """The identity's private key, decrypted; SigningAuthorityError when it cannot be."""
    try:
        key = serialization.load_pem_private_key(
            identity.key_pem, password=_password(secret=secret)
        )
    except (ValueError, TypeError):
        raise SigningAuthorityError(
            "the signing key cannot be decrypted with this deployment's secret key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningAuthorityError("the signing key is not an ECDSA key")
    certificate = x509.load_pem_x509_certificate(identity.certificate_pem)
    if certificate.public_key() != key.public_key():
        raise SigningAuthorityError("the signing key does not belong to the signing certificate")
    return key


def _self_signed_ca(*, key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    """A new self-signed CA certificate that may issue end-entity certificates only."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    """digitalSignature + nonRepudiation for a signer; keyCertSign + cRLSign for a CA."""
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The AKI naming the issuer's SKI (or its public key when it has none)."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_ca(*, certificate: x509.Certificate, key: IssuerKey, now: datetime) -> None:
    """Refuse a certificate that is not a usable CA for this key at this moment."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise SigningAuthorityError("the certificate is not a CA certificate (basicConstraints CA)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise SigningAuthorityError("the CA certificate may not sign certificates (keyCertSign)")
    if certificate.public_key() != key.public_key():
        raise SigningAuthorityError("the CA key does not belong to the CA certificate")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SigningAuthorityError(
            "the CA certificate is not valid now "
            f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d})"
        )


def _read(*, directory: Path, secret: bytes) -> Authority:
    """The stored CA, checked: readable, decryptable with the secret, key matching certificate."""
    try:
        certificate_pem = (directory / CA_CERTIFICATE_FILE).read_bytes()
        key_pem = (directory / CA_KEY_FILE).read_bytes()
    except OSError as error:
        raise SigningAuthorityError(f"the signing CA cannot be read: {error}") from None
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        raise SigningAuthorityError(
            f"{directory / CA_CERTIFICATE_FILE} is not a PEM certificate"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=_password(secret=secret))
    except (ValueError, TypeError):
        raise SigningAuthorityError(
            "the signing CA key cannot be decrypted with this deployment's secret key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SigningAuthorityError(f"{directory / CA_KEY_FILE} is not an RSA or ECDSA key")
    if certificate.public_key() != key.public_key():
        raise SigningAuthorityError(
            f"{directory / CA_KEY_FILE} does not belong to {directory / CA_CERTIFICATE_FILE}"
        )
    return Authority(certificate=certificate, private_key=key)


def _encrypted_key(*, key: IssuerKey, secret: bytes) -> bytes:
    """The key as PKCS#8 PEM encrypted with the secret-derived password."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_password(secret=secret)),
    )


def _store(
    *, directory: Path, certificate: x509.Certificate, key: IssuerKey, secret: bytes
) -> None:
    """Write the key, then the certificate (the commit point), each atomically and durably."""
    _write_atomic(directory / CA_KEY_FILE, _encrypted_key(key=key, secret=secret))
    _write_atomic(
        directory / CA_CERTIFICATE_FILE, certificate.public_bytes(serialization.Encoding.PEM)
    )
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file (mode 0600), fsync, rename over `path`."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on the directory's lock file, across processes."""
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
