"""Enrolling a kiosk, in the browser: GET /kiosk (the kiosk's entry), POST /kiosk/enrol (a
code typed on its keypad), and the administrator's "Create an enrolment code" on the devices
page (POST /admin/devices/{username}/enrolment), shown once with its link and QR code.

`/kiosk?enrol=<code>` spends the code, sets the kiosk cookie (the device credential) and
sends the browser on to `/kiosk` with a 303, so that the code stays neither in the address
bar nor in the history. A kiosk device then gets the kiosk app (`pages.kiosk_app`); anybody
else the enrolment screen.
"""

from __future__ import annotations

import hmac
import io
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

import segno
from aiohttp import web
from markupsafe import Markup

from server import i18n, keys
from server.access import allow
from server.accounts.middleware import KIOSK_COOKIE
from server.context import client_addr, db, principal, recorder
from server.db import utcnow
from server.errors import DomainError, TooManyRequests
from server.forms import posted
from server.identity import Role
from server.kiosk import enrolment, pages
from server.templates import render

ENROL_CSRF_COOKIE = "doorstep_kiosk_enrol"
"""Double-submit token of the enrolment form (it is posted by nobody signed in)."""
KIOSK_PATH = "/kiosk"
ENROL_PATH = "/kiosk/enrol"
COOKIE_MAX_AGE = enrolment.DEVICE_TOKEN_DAYS * 24 * 3600
_PROBLEMS = frozenset({*enrolment.REFUSALS, "throttled", "form"})


def set_kiosk_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """The device credential: HttpOnly, SameSite=Strict, Secure under https, Path=/, a year."""
    response.set_cookie(
        KIOSK_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[keys.SETTINGS].tls_enabled or request.secure,
        path="/",
        max_age=COOKIE_MAX_AGE,
    )


def _enrol_screen(
    request: web.Request, *, status: int = 200, problem: str = "", retry_after: int = 0
) -> web.Response:
    """The code entry screen, (re)issuing the double-submit token that its form echoes."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "kiosk/enrol.html",
        status=status,
        locale=i18n.negotiate(request.headers.get("Accept-Language")),
        problem=problem if problem in _PROBLEMS else "",
        retry_minutes=max(1, -(-retry_after // 60)) if retry_after else 0,
        enrol_csrf=token,
        code_digits=enrolment.CODE_DIGITS,
    )
    response.set_cookie(
        ENROL_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[keys.SETTINGS].tls_enabled or request.secure,
        path=KIOSK_PATH,
    )
    if KIOSK_COOKIE in request.cookies and request.get(keys.PRINCIPAL) is None:
        response.del_cookie(KIOSK_COOKIE, path="/")  # revoked, expired or not a kiosk's
    return response


async def _redeem(request: web.Request, code: str) -> enrolment.Credential:
    settings = request.app[keys.SETTINGS]
    async with db(request) as session:
        return await enrolment.redeem(
            session=session,
            audit=recorder(request),
            code=code,
            client_addr=client_addr(request),
            max_failures=settings.login_max_failures,
            failure_window=timedelta(minutes=settings.login_failure_window_minutes),
        )


def _enrolled(request: web.Request, found: enrolment.Credential) -> web.StreamResponse:
    """On to the kiosk's first screen with the cookie set.

    After a cross-site navigation (a link opened from another site) the browser would not
    send the SameSite=Strict cookie on the redirect, so such a visit gets a page that moves
    on by itself instead.
    """
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        response: web.StreamResponse = render(request, "kiosk/enrolled.html")
        response.headers["Refresh"] = f"0; url={KIOSK_PATH}"
    else:
        response = web.Response(status=303, headers={"Location": KIOSK_PATH})
    set_kiosk_cookie(request, response, found.token)
    response.del_cookie(ENROL_CSRF_COOKIE, path=KIOSK_PATH)
    return response


def _refused_redirect(problem: str) -> web.StreamResponse:
    """Back to /kiosk naming the problem, so that the code leaves the address bar."""
    return web.Response(
        status=303, headers={"Location": f"{KIOSK_PATH}?{urlencode({'problem': problem})}"}
    )


@allow(public=True, page=True)
async def kiosk_entry(request: web.Request) -> web.StreamResponse:
    """GET /kiosk: redeem ?enrol=<code>; the kiosk app for a kiosk; else the enrolment screen."""
    code = request.query.get("enrol")
    if code is not None:
        try:
            found = await _redeem(request, code[:64])
        except TooManyRequests:
            return _refused_redirect("throttled")
        except enrolment.EnrolmentRefused as refused:
            return _refused_redirect(refused.reason)
        return _enrolled(request, found)
    caller = request.get(keys.PRINCIPAL)
    if caller is not None and caller.role is Role.KIOSK:
        return await pages.kiosk_app(request)
    return _enrol_screen(request, problem=request.query.get("problem", ""))


@allow(public=True, page=True)
async def kiosk_enrol(request: web.Request) -> web.StreamResponse:
    """POST /kiosk/enrol: the code typed on the kiosk's keypad."""
    form = await posted(request)
    expected = request.cookies.get(ENROL_CSRF_COOKIE, "")
    presented = form.get("enrol_csrf", "")
    if (
        not expected
        or not isinstance(presented, str)
        or not hmac.compare_digest(expected, presented)
    ):
        return _enrol_screen(request, status=403, problem="form")
    code = form.get("code", "")
    try:
        found = await _redeem(request, code[:64] if isinstance(code, str) else "")
    except TooManyRequests as error:
        response = _enrol_screen(
            request, status=429, problem="throttled", retry_after=error.retry_after
        )
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    except enrolment.EnrolmentRefused as refused:
        return _enrol_screen(request, status=refused.status, problem=refused.reason)
    return _enrolled(request, found)


def qr_svg(link: str) -> Markup:
    """The link as a QR code: inline SVG markup (paths only, no style attributes)."""
    out = io.BytesIO()
    segno.make(link, error="m").save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        scale=6,
        border=4,
        dark="#000",
        light="#fff",
        svgclass="enrol-qr",
        lineclass=None,
    )
    return Markup(out.getvalue().decode())  # noqa: S704  (segno's own markup of our link)


def enrolment_link(request: web.Request, code: str) -> str:
    """The link that enrols a kiosk: under the public URL, or this request's origin."""
    base = request.app[keys.SETTINGS].public_url.rstrip("/")
    base = base or f"{request.scheme}://{request.host}"
    return f"{base}{KIOSK_PATH}?{urlencode({'enrol': code})}"


@allow(Role.ADMIN, page=True)
async def enrolment_create(request: web.Request) -> web.StreamResponse:
    """POST /admin/devices/{username}/enrolment: a one-time code for a kiosk, shown once."""
    username = request.match_info["username"]
    minutes = request.app[keys.SETTINGS].kiosk_enrolment_minutes
    try:
        async with db(request) as session:
            code, expires_at = await enrolment.create_code(
                session=session,
                audit=recorder(request),
                caller=principal(request),
                device=username,
                lifetime=timedelta(minutes=minutes),
            )
    except DomainError as error:
        return render(request, "error.html", status=error.status, message=error.message)
    return _code_page(request, username=username, code=code, expires_at=expires_at)


def _code_page(
    request: web.Request, *, username: str, code: str, expires_at: datetime
) -> web.Response:
    link = enrolment_link(request, code)
    return render(
        request,
        "kiosk/enrolment_code.html",
        status=201,
        device=username,
        code=code,
        expires_at=expires_at,
        minutes_left=max(1, round((expires_at - utcnow()).total_seconds() / 60)),
        link=link,
        qr=qr_svg(link),
    )
