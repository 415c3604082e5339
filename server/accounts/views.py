"""Accounts API: sign in, sign out, who am I."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server import keys
from server.accounts import service
from server.accounts.middleware import session_cookie
from server.accounts.principal import Principal
from server.accounts.schemas import LoginIn, LoginOut, MeOut, OrganisationOut
from server.audit import service as audit
from server.endpoint import api, json_response, read_body
from server.errors import NotAuthenticated, TooManyRequests
from server.requests import actor, client_addr, db, principal


def me_out(caller: Principal) -> MeOut:
    """Response body describing a principal."""
    return MeOut(
        id=caller.user_id,
        username=caller.username,
        display_name=caller.display_name,
        role=caller.role,
        specialties=list(caller.specialties),
        organisation=OrganisationOut(id=caller.org_id, name=caller.org_name, kind=caller.org_kind),
    )


async def sign_in(request: web.Request, *, username: str, password: str) -> tuple[Principal, str]:
    """Check credentials (throttled, audited) and open a session; returns the caller and cookie."""
    settings = request.app[keys.SETTINGS]
    secret = request.app[keys.SECRET]
    metrics = request.app[keys.METRICS]
    addr = client_addr(request)
    who = actor(request)
    async with db(request) as session, session.begin():
        try:
            await service.check_throttle(
                session=session,
                username=username,
                client_addr=addr,
                max_failures=settings.login_max_failures,
                window=timedelta(minutes=settings.login_failure_window_minutes),
            )
        except TooManyRequests:
            throttled = True
        else:
            throttled = False
        user = None
        if not throttled:
            user = await service.authenticate(
                session=session, username=username, password=password, client_addr=addr
            )
        if user is None:
            await audit.record(
                session=session,
                secret=secret,
                actor=who,
                action="auth.login",
                outcome=audit.DENIED if throttled else audit.FAILURE,
                object_type="user",
                object_id=username[:64],
            )
        else:
            opened = await service.open_session(
                session=session,
                user=user,
                client_addr=addr,
                max_age=timedelta(hours=settings.session_max_hours),
            )
            caller = Principal.of(
                user,
                via="session",
                csrf_token=opened.record.csrf_token,
                session_id=opened.record.id,
            )
            await audit.record(
                session=session,
                secret=secret,
                actor=audit.Actor(user.id, user.username, user.org_id, addr),
                action="auth.login",
                object_type="user",
                object_id=user.id,
            )
    if throttled:
        metrics.logins.labels("throttled").inc()
        raise TooManyRequests(
            "Too many failed sign-ins. Try again later.",
            retry_after=settings.login_failure_window_minutes * 60,
        )
    if user is None:
        metrics.logins.labels("failure").inc()
        raise NotAuthenticated("Wrong username or password.")
    metrics.logins.labels("success").inc()
    return caller, opened.secret


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    """Attach the session cookie: HttpOnly, SameSite=Lax, Secure under TLS."""
    settings = request.app[keys.SETTINGS]
    response.set_cookie(
        session_cookie(settings),
        secret,
        httponly=True,
        samesite="Lax",
        secure=settings.tls_enabled,
        path="/",
        max_age=settings.session_max_hours * 3600,
    )


async def sign_out(request: web.Request, response: web.StreamResponse) -> None:
    """End the caller's session (if any), audit it and clear the cookie."""
    caller = request.get(keys.PRINCIPAL)
    if caller is not None and caller.session_id is not None:
        async with db(request) as session, session.begin():
            await service.close_session(session=session, session_id=caller.session_id)
            await audit.record(
                session=session,
                secret=request.app[keys.SECRET],
                actor=actor(request),
                action="auth.logout",
                object_type="user",
                object_id=caller.user_id,
            )
    response.del_cookie(session_cookie(request.app[keys.SETTINGS]), path="/")


@api(
    summary="Sign in and start a session (cookie)",
    tag="auth",
    body=LoginIn,
    response=LoginOut,
    public=True,
)
async def login(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/auth/login."""
    body = await read_body(request, LoginIn)
    caller, secret = await sign_in(request, username=body.username, password=body.password)
    response = json_response(LoginOut(user=me_out(caller), csrf_token=caller.csrf_token))
    set_session_cookie(request, response, secret)
    return response


@api(summary="End the current session", tag="auth", status=204)
async def logout(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/auth/logout."""
    response = web.Response(status=204)
    await sign_out(request, response)
    return response


@api(summary="The signed-in user", tag="auth", response=MeOut)
async def me(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/me."""
    return json_response(me_out(principal(request)))
