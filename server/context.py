"""What a view knows about its request: the caller, the audit actor, a database transaction."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import TYPE_CHECKING

from aiohttp import web

from server import keys
from server.db import Transaction, transaction
from server.errors import NotAuthenticated
from server.identity import Actor, Principal

if TYPE_CHECKING:
    from server.audit.service import Recorder
    from server.settings import Settings

_MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
GUEST_SCHEME = "guest"
"""`Authorization: Guest <credential>`: a consult guest's credential, for non-browser clients."""
GUEST_CREDENTIAL_MAX = 128


def guest_cookie(settings: Settings) -> str:
    """The guest cookie's name; the __Host- prefix pins it to this origin under TLS."""
    return "__Host-doorstep_guest" if settings.tls_enabled else "doorstep_guest"


def guest_credential(request: web.Request) -> str | None:
    """The consult guest credential the request carries (header first, then cookie), if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != GUEST_SCHEME:
        value = request.cookies.get(guest_cookie(request.app[keys.SETTINGS]), "")
    value = value.strip()
    return value if 0 < len(value) <= GUEST_CREDENTIAL_MAX else None


def has_guest_header(request: web.Request) -> bool:
    """True when the request authenticates as a guest (`Authorization: Guest ...`)."""
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    return scheme.lower() == GUEST_SCHEME


def principal(request: web.Request) -> Principal:
    """The signed-in caller (the access middleware guarantees one on non-public routes)."""
    found: Principal | None = request.get(keys.PRINCIPAL)
    if found is None:
        raise NotAuthenticated("Sign in to continue.")
    return found


def client_addr(request: web.Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy what X-Forwarded-For names.

    X-Forwarded-For is read from the right (the entry the nearest proxy appended) to the
    first address that is not itself a trusted proxy; a client cannot choose it by
    sending its own header, which the proxies append to rather than replace.
    """
    peer = request.remote or ""
    proxies = request.app[keys.SETTINGS].trusted_proxies
    if not proxies or not _is_among(peer, proxies):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_among(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _is_among(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def actor(request: web.Request) -> Actor:
    """The caller as an audit actor; anonymous when nobody is signed in."""
    found = request.get(keys.PRINCIPAL)
    if found is None:
        return Actor(
            user_id=None, username="anonymous", org_id=None, client_addr=client_addr(request)
        )
    return Actor(
        user_id=found.user_id,
        username=found.username,
        org_id=found.org_id,
        client_addr=client_addr(request),
    )


def recorder(request: web.Request) -> Recorder:
    """The audit recorder of this request's caller, to hand to the services it calls."""
    return request.app[keys.AUDIT].recorder(actor(request))


def db(request: web.Request) -> Transaction:
    """A database transaction: `async with db(request) as session:` (commits, then after-commit)."""
    return transaction(request.app[keys.SESSIONMAKER], request.app[keys.WRITE_GROUP])


def is_api(request: web.Request) -> bool:
    """True for machine routes that answer in JSON."""
    return request.path.startswith(("/api/", "/dicom-web/")) or request.path in _MACHINE_PATHS
