"""Resolve the caller of every request and enforce the handler's declared access."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler

from server import keys
from server.access import access_of
from server.accounts import service
from server.accounts.principal_cache import Grant
from server.audit.service import DENIED
from server.context import db, guest_credential, has_guest_header, recorder
from server.errors import NotAuthenticated, PermissionDenied
from server.forms import posted
from server.identity import Principal, Role
from server.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
PASSWORD_PAGE = "/account/password"  # noqa: S105  (a path, not a secret)
# What a session may do before its temporary password is replaced.
_BEFORE_PASSWORD_CHANGE = frozenset({PASSWORD_PAGE, "/logout", "/api/v1/auth/logout", "/api/v1/me"})
KIOSK_COOKIE = "doorstep_kiosk"
"""The kiosk's device credential: a device token of a Role.KIOSK user (server.kiosk)."""
KIOSK_VIA = "kiosk_cookie"
"""Principal.via of a caller authenticated by the kiosk cookie (CSRF-checked like a session)."""


def session_cookie(settings: Settings) -> str:
    """Cookie name; the __Host- prefix pins it to this origin under TLS."""
    return "__Host-doorstep_session" if settings.tls_enabled else "doorstep_session"


def kiosk_csrf_token(secret_key: bytes, device_token: str) -> str:
    """The CSRF token of a kiosk cookie: an HMAC of its token, so that no state is kept."""
    key = hmac.new(secret_key, b"doorstep-kiosk-csrf-v1", hashlib.sha256).digest()
    return hmac.new(key, device_token.encode(), hashlib.sha256).hexdigest()


async def _token_principal(request: web.Request, token: str) -> Principal:
    async def load() -> Grant:
        async with request.app[keys.ENGINE].connect() as connection:
            return await service.load_grant(connection=connection, token=token)

    return await request.app[keys.PRINCIPAL_CACHE].get(service.secret_hash(token), load)


async def _kiosk_principal(request: web.Request, token: str) -> Principal:
    """The kiosk cookie: a device token, good only for kiosk devices, CSRF-checked."""
    found = await _token_principal(request, token)
    if found.role is not Role.KIOSK:
        raise NotAuthenticated("The kiosk cookie carries a credential that is not a kiosk's.")
    csrf = kiosk_csrf_token(request.app[keys.AUDIT].secret, token)
    return replace(found, via=KIOSK_VIA, csrf_token=csrf)


async def _resolve(request: web.Request) -> Principal | None:
    settings = request.app[keys.SETTINGS]
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("Use 'Authorization: Bearer <token>'.")
        return await _token_principal(request, token.strip())
    secret = request.cookies.get(session_cookie(settings))
    if secret:
        async with db(request) as session:
            record = await service.resume_session(
                session=session,
                secret=secret,
                idle=timedelta(minutes=settings.session_idle_minutes),
            )
            if record is not None:
                return Principal.of(
                    record.user, via="session", csrf_token=record.csrf_token, session_id=record.id
                )
    device_token = request.cookies.get(KIOSK_COOKIE, "").strip()
    if device_token:
        return await _kiosk_principal(request, device_token)
    return None


async def _check_csrf(request: web.Request, caller: Principal) -> None:
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await posted(request)
        value = form.get(CSRF_FIELD, "")
        presented = value if isinstance(value, str) else ""
    if not presented or not hmac.compare_digest(presented, caller.csrf_token):
        raise PermissionDenied("Missing or wrong CSRF token; reload the page and try again.")


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        raise PermissionDenied("Cross-origin request refused.")


async def _refused_credential(request: web.Request) -> None:
    """Audit a device token or kiosk cookie that does not (or no longer) let anybody in: an
    unknown device, a revoked or expired token, a disabled kiosk."""
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    if scheme.lower() == "bearer":
        via = "bearer"
    elif request.cookies.get(KIOSK_COOKIE):
        via = "kiosk_cookie"
    else:
        return
    async with db(request) as session:
        await recorder(request).record(
            session,
            action="auth.credential",
            outcome=DENIED,
            details={"via": via, "method": request.method, "path": request.path[:200]},
        )


@web.middleware
async def authorise(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: every handler is for signed-in users unless it declares otherwise."""
    match = request.match_info
    if match.http_exception is not None:  # 404/405: the error page still knows who is signed in
        try:
            request[keys.PRINCIPAL] = await _resolve(request)
        except NotAuthenticated:
            request[keys.PRINCIPAL] = None
        return await handler(request)
    if isinstance(match.route.resource, web.StaticResource):
        request[keys.PRINCIPAL] = None
        return await handler(request)
    access = access_of(match.handler)
    # Public machine routes (health, sign-in API) never look at credentials; public pages
    # (sign-in) look, but answer a stale or foreign Authorization header as anyone else,
    # rather than sending the browser back to themselves.
    if access.public and not access.page:
        caller = None
    elif access.public:
        try:
            caller = await _resolve(request)
        except NotAuthenticated:
            caller = None
    elif access.guest and has_guest_header(request):
        caller = None  # a consult guest's `Authorization: Guest ...`: no user is meant
    else:
        try:
            caller = await _resolve(request)
        except NotAuthenticated:
            await _refused_credential(request)
            raise
    request[keys.PRINCIPAL] = caller
    if access.public:
        return await handler(request)
    if caller is None and access.guest and guest_credential(request) is not None:
        return await _as_guest(request, handler)
    if caller is None:
        raise NotAuthenticated("Sign in to continue.")
    if not access.allows(caller.role):
        allowed = ", ".join(sorted(r.value for r in access.roles))
        raise PermissionDenied(
            f"This is for {allowed} accounts; you are signed in as {caller.role.value}."
        )
    if caller.via in ("session", KIOSK_VIA):
        _check_origin(request)
        if request.method not in SAFE_METHODS:
            await _check_csrf(request, caller)
    if caller.password_change_required and request.path not in _BEFORE_PASSWORD_CHANGE:
        if access.page:
            raise web.HTTPSeeOther(PASSWORD_PAGE)
        raise PermissionDenied(f"Replace your temporary password first, at {PASSWORD_PAGE}.")
    return await handler(request)


async def _as_guest(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A consult guest on one of the few routes that take guests: GET only, same origin.

    The handler checks the guest credential itself (the consult it is bound to, expiry,
    revocation); nobody is signed in, so `principal(request)` still refuses.
    """
    if request.method not in SAFE_METHODS:
        raise PermissionDenied("A guest of a consult can only join its call.")
    _check_origin(request)
    return await handler(request)
