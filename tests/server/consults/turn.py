"""A minimal TURN client over UDP (RFC 5389/5766 long-term credentials) and a coturn runner."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0x2112A442
BINDING, ALLOCATE, CREATE_PERMISSION = 0x0001, 0x0003, 0x0008
SUCCESS, ERROR = 0x0100, 0x0110
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0006, 0x0008, 0x0009
XOR_PEER_ADDRESS, REALM, NONCE = 0x0012, 0x0014, 0x0015
XOR_RELAYED_ADDRESS, REQUESTED_TRANSPORT = 0x0016, 0x0019
UDP = 17


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _message(method: int, attributes: bytes, *, key: bytes | None = None) -> bytes:
    transaction = os.urandom(12)
    if key is None:
        return struct.pack("!HHI", method, len(attributes), MAGIC) + transaction + attributes
    length = len(attributes) + 24  # MESSAGE-INTEGRITY counts in the length it covers
    head = struct.pack("!HHI", method, length, MAGIC) + transaction + attributes
    digest = hmac.new(key, head, hashlib.sha1).digest()
    return head + _attribute(MESSAGE_INTEGRITY, digest)


@dataclass(frozen=True)
class Response:
    """A STUN response: its class and method, and its attributes."""

    kind: int
    attributes: dict[int, bytes]

    @property
    def ok(self) -> bool:
        """True for a success response."""
        return self.kind & 0x0110 == SUCCESS

    @property
    def error_code(self) -> int | None:
        """The ERROR-CODE (401, 403, 438…) of an error response."""
        value = self.attributes.get(ERROR_CODE)
        return None if value is None else value[2] * 100 + value[3]


def _parse(data: bytes) -> Response:
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    assert cookie == MAGIC, "not a STUN message"
    attributes: dict[int, bytes] = {}
    at = 20
    while at < 20 + length:
        name, size = struct.unpack("!HH", data[at : at + 4])
        attributes.setdefault(name, data[at + 4 : at + 4 + size])
        at += 4 + size + (-size % 4)
    return Response(kind, attributes)


def _xor_address(ip: str, port: int) -> bytes:
    packed = socket.inet_aton(ip)
    xored = bytes(b ^ m for b, m in zip(packed, struct.pack("!I", MAGIC), strict=True))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + xored


class TurnClient:
    """One 5-tuple to a TURN server: allocate a relay, then ask for permissions."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.key = b""
        self.realm = b""
        self.nonce = b""
        self.username = b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def _ask(self, message: bytes) -> Response:
        for _ in range(3):
            self.sock.sendto(message, self.address)
            try:
                data, _ = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            return _parse(data)
        raise TimeoutError("the TURN server did not answer")

    def binding(self) -> Response:
        """A STUN Binding request (is the server up?)."""
        return self._ask(_message(BINDING, b""))

    def allocate(self, username: str, password: str) -> Response:
        """Allocate a UDP relay with long-term credentials (the 401 round trip first)."""
        transport = _attribute(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
        first = self._ask(_message(ALLOCATE, transport))
        assert first.error_code == 401, first
        self.realm, self.nonce = first.attributes[REALM], first.attributes[NONCE]
        self.username = username.encode()
        self.key = hashlib.md5(
            self.username + b":" + self.realm + b":" + password.encode()
        ).digest()
        return self._ask(_message(ALLOCATE, transport + self._credentials(), key=self.key))

    def create_permission(self, peer: str) -> Response:
        """Ask for a permission to relay to and from a peer address (after an allocation)."""
        body = _attribute(XOR_PEER_ADDRESS, _xor_address(peer, 9)) + self._credentials()
        return self._ask(_message(CREATE_PERMISSION, body, key=self.key))

    def _credentials(self) -> bytes:
        return (
            _attribute(USERNAME, self.username)
            + _attribute(REALM, self.realm)
            + _attribute(NONCE, self.nonce)
        )


def free_udp_block() -> int:
    """A UDP port with the next 50 free too (coturn's listener and its relay ports)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base: int = s.getsockname()[1]
        if base > 65000:
            continue
        taken = []
        try:
            for port in range(base, base + 51):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                taken.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in taken:
                probe.close()
        return base
    raise AssertionError("no free block of UDP ports")


@contextmanager
def coturn(
    turnserver: str, folder: Path, *, port: int, secret: str, realm: str, extra: list[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A coturn on 127.0.0.1:port with use-auth-secret, until the block ends."""
    config = folder / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={port + 1}",
                f"max-port={port + 50}",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                f"realm={realm}",
                "no-tls",
                "no-dtls",
                "no-tcp",
                "no-cli",
                "no-rfc5780",
                "no-stun-backward-compatibility",
                f"pidfile={folder / 'turnserver.pid'}",
                f"log-file={folder / 'turnserver.log'}",
                "simple-log",
                *extra,
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        [turnserver, "-c", str(config), "--no-stdout-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = TurnClient("127.0.0.1", port)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, "coturn exited"
                try:
                    probe.binding()
                    break
                except (TimeoutError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            probe.close()
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
