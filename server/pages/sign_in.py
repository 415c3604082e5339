"""Browser pages of the shell: sign-in and sign-out."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts import views as accounts_views
from server.errors import DomainError
from server.forms import posted
from server.templates import render

LOGIN_CSRF_COOKIE = "doorstep_login_csrf"
_NOTICES = {"idle": "You were signed out because nothing happened for a while."}


def safe_next(target: str) -> str:
    """A local path to go to after sign-in; anything else goes home."""
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 for c in target)
    ):
        return "/"
    return target


def _login_page(
    request: web.Request, *, token: str, status: int = 200, **context: str
) -> web.Response:
    """The sign-in page, (re)issuing the login CSRF cookie that its form must echo."""
    response = render(request, "login.html", status=status, login_csrf=token, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return response


@allow(public=True, page=True)
async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login."""
    if request.get(keys.PRINCIPAL) is not None:
        raise web.HTTPSeeOther("/")
    notice = _NOTICES.get(request.query.get("reason", ""), "")
    return _login_page(
        request,
        token=secrets.token_urlsafe(24),
        next=safe_next(request.query.get("next", "/")),
        notice=notice,
    )


@allow(public=True, page=True)
async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login: form sign-in."""
    form = await posted(request)
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, str(form.get("login_csrf", ""))):
        return _login_page(
            request,
            token=secrets.token_urlsafe(24),
            status=403,
            error="The sign-in form expired; please try again.",
            next=target,
            username=username[:64],
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
