"""GET /consults/guest/{token}: a guest opens their one-time link into a consult's call.

The one page of the product that a guest reaches without an account (besides the call
itself): it spends the link, sets the guest cookie bound to the consult and sends the
browser on to the call page `/consults/{id}`; a link that was used, has expired, was
revoked or whose consult is over gets a plain page saying so (410).
"""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.access import allow
from server.consults import guests, paths
from server.context import db, guest_cookie, guest_credential, recorder
from server.db import utcnow
from server.templates import render


def set_guest_cookie(
    request: web.Request, response: web.StreamResponse, found: guests.Redeemed
) -> None:
    """The guest cookie: HttpOnly, SameSite=Strict, Secure under TLS, until the link expires."""
    settings = request.app[keys.SETTINGS]
    seconds = int((found.guest.expires_at - utcnow()).total_seconds())
    response.set_cookie(
        guest_cookie(settings),
        found.credential,
        httponly=True,
        samesite="Strict",
        secure=settings.tls_enabled,
        path="/",
        max_age=max(seconds, 1),
    )


def _onward(request: web.Request, consult_id: int) -> web.StreamResponse:
    """On to the call page: a redirect, or a page that navigates on after a cross-site click.

    Browsers do not send a SameSite=Strict cookie on a redirect that a cross-site click
    (a link in a mail or a chat app) started, so such a visit gets a page that moves on
    by itself (meta refresh, a same-site navigation) and shows a link as well.
    """
    target = paths.call_page(consult_id)
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        response = render(request, "consults/guest_link.html", target=target, message="")
        response.headers["Refresh"] = f"0; url={target}"
        return response
    return web.Response(status=303, headers={"Location": target})


@allow(public=True, page=True)
async def open_link(request: web.Request) -> web.StreamResponse:
    """GET /consults/guest/{token}: spend the link, set the guest cookie, on to the call."""
    try:
        async with db(request) as session:
            found = await guests.redeem(
                session=session,
                audit=recorder(request),
                token=request.match_info["token"],
                credential=guest_credential(request),
            )
    except guests.LinkGone as gone:
        return render(
            request, "consults/guest_link.html", status=410, target=None, message=gone.message
        )
    if isinstance(found, guests.GuestMember):
        return _onward(request, found.consult_id)
    response = _onward(request, found.guest.consult_id)
    set_guest_cookie(request, response, found)
    return response
