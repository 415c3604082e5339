"""TCP options (PS3.8 9.1) that keep DIMSE exchanges free of 40 ms delayed-ACK stalls.

A peer with Nagle's algorithm on (dcmtk's default) writes a PDU header and its
body separately and holds the body until the header is acknowledged. Linux
delays that ACK by up to 40 ms once the connection looks interactive
("pingpong" mode, entered because we answered the previous message), so every
C-STORE after the first waited. We send without Nagle ourselves and, after
each PDU we send, leave pingpong mode (TCP_QUICKACK) so the peer's next PDU is
acknowledged as soon as we read it. Measured with storescu, 200 small
instances on loopback: 12.5 s before, 3.5-4.5 s after.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def _socket(event: Any) -> socket.socket | None:
    sock: socket.socket | None = event.assoc.dul.socket.socket
    return sock


def handle_conn_open(event: Any) -> None:
    """EVT_CONN_OPEN: send our PDUs without waiting for ACKs of earlier small writes."""
    sock = _socket(event)
    if sock is not None:
        with contextlib.suppress(OSError):  # the peer may already be gone
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def handle_pdu_sent(event: Any) -> None:
    """EVT_PDU_SENT: leave delayed-ACK mode so that the peer's next PDU is ACKed at once."""
    sock = _socket(event)
    if sock is not None and _QUICKACK is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
