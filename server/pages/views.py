"""Browser pages of the shell: sign-in, sign-out and each role's home."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from server.access import allow
from server.accounts import views as accounts_views
from server.accounts.models import Role
from server.errors import DomainError
from server.requests import principal
from server.templates import render

LOGIN_CSRF_COOKIE = "doorstep_login_csrf"
_HOME_TEMPLATES = {
    Role.GP: "home_gp.html",
    Role.SPECIALIST: "home_specialist.html",
    Role.KIOSK: "home_kiosk.html",
    Role.ADMIN: "home_admin.html",
}


def safe_next(target: str) -> str:
    """A local path to go to after sign-in; anything else goes home."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@allow(public=True, page=True)
async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login."""
    if request.get("principal") is not None:
        raise web.HTTPSeeOther("/")
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", login_csrf=token, next=safe_next(request.query.get("next", "/"))
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return response


@allow(public=True, page=True)
async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login: form sign-in."""
    form = await request.post()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, str(form.get("login_csrf", ""))):
        return render(
            request,
            "login.html",
            status=403,
            error="The sign-in form expired; please try again.",
            login_csrf=expected,
            next=target,
        )
    if not username or not password or len(username) > 64 or len(password) > 1024:
        return render(
            request,
            "login.html",
            status=422,
            error="Enter your username and password.",
            login_csrf=expected,
            next=target,
            username=username[:64],
        )
    try:
        _caller, secret = await accounts_views.sign_in(
            request, username=username, password=password
        )
    except DomainError as error:
        return render(
            request,
            "login.html",
            status=error.status,
            error=error.message,
            login_csrf=expected,
            next=target,
            username=username,
        )
    response = web.HTTPSeeOther(target)
    accounts_views.set_session_cookie(request, response, secret)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


@allow(page=True)
async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout."""
    response = web.HTTPSeeOther("/login")
    await accounts_views.sign_out(request, response)
    raise response


@allow(page=True)
async def home(request: web.Request) -> web.StreamResponse:
    """GET /: the signed-in user's workspace."""
    return render(request, _HOME_TEMPLATES[principal(request).role])
