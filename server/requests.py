"""Per-request helpers shared by views: the caller, the database, the client address."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.accounts.principal import Principal
from server.audit.service import Actor
from server.errors import NotAuthenticated

_MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def principal(request: web.Request) -> Principal:
    """The signed-in caller (the access middleware guarantees one on non-public routes)."""
    found: Principal | None = request.get(keys.PRINCIPAL)
    if found is None:
        raise NotAuthenticated("Sign in to continue.")
    return found


def client_addr(request: web.Request) -> str:
    """The peer address of the request."""
    return request.remote or ""


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


def db(request: web.Request) -> AsyncSession:
    """A new database session; use as `async with db(request) as s, s.begin():`."""
    return request.app[keys.SESSIONMAKER]()


def is_api(request: web.Request) -> bool:
    """True for machine routes that answer in JSON."""
    return request.path.startswith(("/api/", "/dicom-web/")) or request.path in _MACHINE_PATHS
