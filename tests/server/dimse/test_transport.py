"""Socket options set on an accepted DIMSE connection."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from server.dimse.transport import handle_conn_open


def _event(sock: socket.socket) -> SimpleNamespace:
    """What pynetdicom passes: event.assoc.dul.socket.socket is the connection."""
    dul = SimpleNamespace(socket=SimpleNamespace(socket=sock))
    return SimpleNamespace(assoc=SimpleNamespace(dul=dul))


def test_connection_open_disables_nagle() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()),
    ):
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            handle_conn_open(_event(accepted))
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
