"""Where the server may connect on a clinic's behalf: public addresses only (webhooks).

A webhook URL is typed by an administrator, and its host name could lead the server
to its own network (a database, a cloud metadata service). The host is checked when
the URL is saved (an address literal) and when it is resolved for each attempt: the
connector's resolver hands aiohttp only public addresses, so a name that resolves (or
is re-pointed) inside the network is refused at connect time, with no window between
the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped IPv6 one by its IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def address_literal(host: str) -> str | None:
    """The host as an IP address if it is one ("[::1]" and "::1" alike), else None."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        return None
    return bare


class PublicResolver(AbstractResolver):
    """Resolves host names to their public addresses only (and loopback when allowed)."""

    def __init__(self, *, allow_loopback: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The public addresses of host; OSError when it has none."""
        found = await self._inner.resolve(host, port, family)
        allowed = [
            r
            for r in found
            if is_public(r["host"]) or (self._allow_loopback and is_loopback(r["host"]))
        ]
        if not allowed:
            raise OSError(f"{host} resolves only to private or reserved addresses; refused")
        return allowed

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()
