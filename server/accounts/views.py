"""Accounts API: sign in, sign out, who am I."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server import keys
from server.accounts import sign_in as signing
from server.accounts.middleware import session_cookie
from server.accounts.schemas import LoginIn, LoginOut, MeOut, OrganisationOut
from server.context import client_addr, db, principal, recorder
from server.endpoint import api, json_response, read_body
from server.errors import NotAuthenticated, PermissionDenied, TooManyRequests
from server.identity import Principal


class AccountDisabled(PermissionDenied):
    """The right password for a disabled account."""

    code = "account_disabled"


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
    async with db(request) as session:
        result = await signing.sign_in(
            session=session,
            audit=recorder(request),
            username=username,
            password=password,
            client_addr=client_addr(request),
            max_failures=settings.login_max_failures,
            failure_window=timedelta(minutes=settings.login_failure_window_minutes),
            max_age=timedelta(hours=settings.session_max_hours),
        )
    logins = request.app[keys.METRICS].logins
    if result.outcome == "throttled":
        logins.labels("throttled").inc()
        raise TooManyRequests(
            "Too many failed sign-ins from here. Try again later.", retry_after=result.retry_after
        )
    if result.outcome == "disabled":
        logins.labels("disabled").inc()
        raise AccountDisabled("This account is disabled; ask your administrator.")
    if result.principal is None:
        logins.labels("failure").inc()
        raise NotAuthenticated("Wrong username or password.")
    logins.labels("success").inc()
    return result.principal, result.secret


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
    """End the caller's session (if any), audited, and clear the cookie."""
    caller = request.get(keys.PRINCIPAL)
    if caller is not None:
        async with db(request) as session:
            await signing.sign_out(session=session, audit=recorder(request), caller=caller)
    response.del_cookie(session_cookie(request.app[keys.SETTINGS]), path="/")


@api(
    summary="Sign in and start a session (cookie)",
    tag="auth",
    body=LoginIn,
    response=LoginOut,
    errors=[429],
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
