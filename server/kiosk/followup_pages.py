"""The take-home link of a follow-up booked "from home", and its calendar file.

GET /kiosk/follow-ups/{token}: before the time, a plain page saying when to open it
again; at the time (10 minutes before to 30 after the start) it asks the named
specialist for the call and, once they have accepted, sends the browser on through a
one-time consult guest link into the call's lobby; while the specialist has not
accepted, a page that looks again by itself (a Refresh header: no script). Afterwards it
says the time has passed. GET /kiosk/follow-ups/{token}.ics: the booking as an
iCalendar file with an alarm 15 minutes before.

The token is the credential (there is no account); it carries no personal data, and the
pages show no more than the time and the specialist's name.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from server import i18n, keys
from server.access import allow
from server.consults import guests, paths
from server.consults import service as consults
from server.context import db, guest_credential, recorder
from server.db import utcnow
from server.errors import Conflict, NotFound
from server.kiosk import followups
from server.kiosk.followup_views import public_base
from server.templates import render

LINK = r"{token:[A-Za-z0-9_-]{1,64}}"
WAIT_REFRESH_SECONDS = 10


def doctor(name: str) -> str:
    """'Dr Name', unless the display name has its title already."""
    return name if name.lower().startswith(("dr ", "dr.", "prof")) else f"Dr {name}"


def _page(
    request: web.Request,
    state: str,
    *,
    status: int = 200,
    follow_up: followups.FollowUp | None = None,
    message: str = "",
) -> web.Response:
    zone = ZoneInfo(request.app[keys.SETTINGS].time_zone)
    response = render(
        request,
        "kiosk/follow_up_home.html",
        status=status,
        locale=i18n.negotiate(request.headers.get("Accept-Language")),
        state=state,
        message=message,
        doctor=doctor(follow_up.specialist) if follow_up else "",
        starts=follow_up.starts_at if follow_up else None,
        zone=zone,
        ics=f"{follow_up.home_path}.ics" if follow_up and follow_up.home_path else "",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@allow(public=True, page=True)
async def home_link(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/follow-ups/{token}: the follow-up's page, or on into its call."""
    settings = request.app[keys.SETTINGS]
    try:
        async with db(request) as session:
            found = await followups.open_home(
                session=session,
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                policy=consults.Policy.of(settings),
                guest_policy=guests.Policy.of(settings),
                token=request.match_info["token"],
                now=utcnow(),
                guest_credential=guest_credential(request),
            )
    except NotFound:
        return _page(request, "unknown", status=404)
    except Conflict as error:
        return _page(request, "unavailable", status=409, message=error.message)
    if found.state == "call" and found.consult_id is not None:
        target = (
            f"/consults/guest/{found.guest_token}"
            if found.guest_token
            else paths.call_page(found.consult_id)
        )
        raise web.HTTPSeeOther(target)
    response = _page(
        request,
        found.state,
        status=410 if found.state == "late" else 200,
        follow_up=found.follow_up,
    )
    if found.state == "waiting":
        response.headers["Refresh"] = str(WAIT_REFRESH_SECONDS)
    return response


@allow(public=True, page=True)
async def calendar_file(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/follow-ups/{token}.ics: the booking as an iCalendar file."""
    async with db(request) as session:
        found = await followups.by_token(session=session, token=request.match_info["token"])
    if found is None or found.home_path is None:
        return _page(request, "unknown", status=404)
    base = public_base(request)
    body = followups.calendar(
        found, url=f"{base}{found.home_path}", host=request.host.split(":")[0], now=utcnow()
    )
    return web.Response(
        body=body.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="doorstep-follow-up.ics"',
            "Cache-Control": "no-store",
        },
    )
