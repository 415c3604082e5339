"""`doorstep serve` as a real process: HTTPS with a certificate, HSTS, secure cookie, clean stop."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, require_tool


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[tuple[str, ssl.SSLContext, subprocess.Popen[bytes]]]:
    cert, key = certificate
    port = free_port()
    env = {
        **os.environ,
        "DOORSTEP_DATA_DIR": str(tmp_path / "data"),
        "DOORSTEP_TLS_CERT": str(cert),
        "DOORSTEP_TLS_KEY": str(key),
        "DOORSTEP_SECRET_KEY": "s" * 32,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--port", str(port), "--dicom-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    context = ssl.create_default_context(cafile=str(cert))
    base = f"https://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                pytest.fail(f"server did not start: {stderr.decode()[-3000:]}")
            time.sleep(0.2)
    yield base, context, process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_https_serves_with_hsts_and_a_host_only_secure_cookie(
    tls_server: tuple[str, ssl.SSLContext, subprocess.Popen[bytes]],
) -> None:
    base, context, _ = tls_server
    with urllib.request.urlopen(f"{base}/healthz", context=context, timeout=5) as response:
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login",
        data=b'{"username": "gp.river", "password": "doorstep-demo"}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-doorstep_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{base}/healthz", context=ssl.create_default_context(), timeout=5)


def test_sigterm_stops_the_server_cleanly(
    tls_server: tuple[str, ssl.SSLContext, subprocess.Popen[bytes]],
) -> None:
    _, _, process = tls_server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
