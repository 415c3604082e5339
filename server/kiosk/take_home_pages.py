"""The take-home summary a visit's QR code opens: no account, a short-lived token only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from server import i18n, keys
from server.access import allow
from server.context import db, recorder
from server.errors import NotFound
from server.kiosk import language, summary, visits
from server.templates import render


@allow(public=True, page=True)
async def take_home(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/take-home/{token}: the visit's vitals, flags and advice, until it expires."""
    token = request.match_info["token"]
    try:
        async with db(request) as session:
            found, until = await summary.taken_home(
                session=session, audit=recorder(request), token=token
            )
    except NotFound:
        chosen = i18n.negotiate(request.headers.get("Accept-Language"))
        response = render(request, "kiosk/take_home_gone.html", status=404, locale=chosen)
    else:
        say = language.gettext(request, found.language)
        response = render(
            request,
            "kiosk/take_home.html",
            locale=language.locale_of(found.language),
            summary=found,
            vitals=visits.as_dict(found.vitals),
            flags=[(f.severity, say(f.message)) for f in found.flags],
            until=until,
            tz=ZoneInfo(request.app[keys.SETTINGS].time_zone),
        )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
