"""`doorstep serve` as a real process: HTTPS with a certificate, HSTS, secure cookie, clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
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


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`doorstep serve` on a free port over HTTP (no DICOM), logging plain text to stderr."""
    port = free_port()
    env = {
        **os.environ,
        "DOORSTEP_DATA_DIR": str(tmp_path / "data"),
        "DOORSTEP_SECRET_KEY": "s" * 32,
        "DOORSTEP_LOG_JSON": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--dicom-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                pytest.fail(f"server did not start: {stderr.decode()[-3000:]}")
            time.sleep(0.2)
    yield port, process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
    return int(status_line.split()[1]), headers, body


BAD_REQUESTS = {
    "bad request line": b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad header": b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    "header too long": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
    "bad chunked encoding": (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "bad version": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
}


def test_protocol_errors_are_json_400s_logged_without_a_traceback(
    plain_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = plain_server
    for name, data in BAD_REQUESTS.items():
        status, headers, body = _raw(port, data)
        assert status == 400, name
        assert headers["content-type"].startswith("application/json"), name
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "details"}, name
        assert error["code"] == "bad_request", name
        assert error["message"], name
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200  # still serving
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    log = stderr.decode()
    assert "Traceback" not in log, log
    assert "ERROR" not in log
    assert log.count("INFO aiohttp.server bad HTTP request") == len(BAD_REQUESTS), log


@pytest.mark.parametrize("which", ["--port", "--dicom-port"])
def test_a_busy_port_is_one_clear_line(which: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = {"--port": str(free_port()), "--dicom-port": str(free_port())} | {which: str(busy)}
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "serve", *(x for p in ports.items() for x in p)],
            env={
                **os.environ,
                "DOORSTEP_DATA_DIR": str(tmp_path / "data"),
                "DOORSTEP_SECRET_KEY": "s" * 32,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    what = "HTTP" if which == "--port" else "DICOM"
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("doorstep:")]
    assert line.startswith(f"doorstep: port {busy} on 127.0.0.1 is in use (the {what} port"), line
    assert which in line
    assert "Doorstep listening" not in result.stderr
