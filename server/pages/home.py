"""Each role's home page: the GP's clinic, the specialist's worklist, the kiosk, the admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.access import allow
from server.accounts import break_glass
from server.accounts import service as accounts
from server.consults import duty
from server.context import db, principal, recorder
from server.identity import Role
from server.patients import service as patients
from server.patients.display import patient_view
from server.reading import service as reading
from server.templates import render

RECENT_PATIENTS = 8


async def _gp(request: web.Request) -> dict[str, Any]:
    async with db(request) as session:
        rows = await patients.recent(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            limit=RECENT_PATIENTS,
        )
        opened = await break_glass.recent_for_organisation(
            session=session, org_id=principal(request).org_id
        )
    return {"recent": [patient_view(p) for p in rows], "break_glass": opened}


async def _admin(request: web.Request) -> dict[str, Any]:
    async with db(request) as session:
        orgs = await accounts.list_orgs(session=session)
        users = await accounts.list_users(session=session)
    return {
        "counts": {
            "organisations": len(orgs),
            "users": sum(1 for u in users if u.role is not Role.KIOSK),
            "devices": sum(1 for u in users if u.role is Role.KIOSK),
            "inactive": sum(1 for u in users if not u.is_active),
        }
    }


async def _specialist(request: web.Request) -> dict[str, Any]:
    caller = principal(request)
    async with db(request) as session:
        open_requests = await reading.items(session=session, caller=caller)
        on_duty = (await duty.state(session=session, caller=caller)).on_duty
    return {
        "on_duty": on_duty,
        "queue": {
            "waiting": sum(1 for i in open_requests if i.status == "waiting"),
            "overdue": sum(1 for i in open_requests if i.overdue),
            "mine": sum(
                1 for i in open_requests if i.request.claimed_by == caller.user_id and i.holder
            ),
        },
    }


async def _nothing(request: web.Request) -> dict[str, Any]:
    return {}


_PAGES: dict[Role, tuple[str, Callable[[web.Request], Awaitable[dict[str, Any]]]]] = {
    Role.GP: ("home_gp.html", _gp),
    Role.SPECIALIST: ("home_specialist.html", _specialist),
    Role.KIOSK: ("home_kiosk.html", _nothing),
    Role.ADMIN: ("home_admin.html", _admin),
}


@allow(page=True)
async def home(request: web.Request) -> web.StreamResponse:
    """GET /: the signed-in user's workspace (a kiosk's is /kiosk)."""
    if principal(request).role is Role.KIOSK:
        raise web.HTTPSeeOther("/kiosk")
    template, load = _PAGES[principal(request).role]
    return render(request, template, **await load(request))
