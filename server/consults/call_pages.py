"""GET /consults/{id}: the call page (pre-join, lobby, the call) and, once ended, its record.

The page carries what the call module needs (the consult, who I am in the call, the other
doctor, the attached studies); media and signaling are the browser's (web/static/consults/
call.mjs), through GET /api/v1/consults/{id}/ice and the signaling socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.access import allow
from server.accounts import service as accounts
from server.consults import guests, paths, service
from server.consults.models import CALLABLE, ConsultStatus
from server.context import db, guest_credential, principal, recorder
from server.errors import NotFound
from server.identity import Principal, Role
from server.templates import render

ENDED = (ConsultStatus.ENDED.value,)


@dataclass(frozen=True, slots=True)
class CallSeat:
    """Who the caller is in the call, as the page shows it."""

    role: str
    """host (the accepted specialist), participant (a GP of the clinic) or guest."""
    name: str
    other: str
    """The other doctor's name (the specialist for a GP, the requesting GP for the specialist)."""


def seat(view: service.View, caller: Principal, names: Mapping[str, str]) -> CallSeat:
    """The caller's seat in the consult's call (names: username -> display name)."""
    host = view.consult.specialist_id == caller.user_id
    name = caller.display_name or caller.username
    other_user = view.requested_by if host else view.accepted_by
    other = names.get(other_user or "", other_user or "the specialist")
    return CallSeat(role="host" if host else "participant", name=name, other=other)


async def _display_names(session: AsyncSession, *usernames: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for username in {u for u in usernames if u}:
        try:
            user = await accounts.get_user(session=session, username=username)
        except NotFound:
            continue
        found[username] = user.display_name or username
    return found


def duration_seconds(view: service.View) -> int | None:
    """How long the call lasted, from going live to its end (None if it never went live)."""
    started: datetime | None = view.consult.live_at
    ended: datetime | None = view.consult.ended_at
    if started is None or ended is None:
        return None
    return max(0, int((ended - started).total_seconds()))


@allow(Role.GP, Role.SPECIALIST, page=True, guest=True)
async def call_page(request: web.Request) -> web.StreamResponse:
    """GET /consults/{id}: a member's call page (join with one button), or the record; for a
    guest of the consult (the guest cookie of its link), the call alone."""
    if request.get(keys.PRINCIPAL) is None:
        return await _guest_page(request, paths.consult_id(request))
    caller = principal(request)
    async with db(request) as session:
        view = await service.get(
            session=session,
            caller=caller,
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=service.Policy.of(request.app[keys.SETTINGS]),
            consult_id=paths.consult_id(request),
        )
        names = await _display_names(session, view.requested_by, view.accepted_by)
        guest_names = (
            [
                link.label or guests.GUEST_NAME
                for link in await guests.links(
                    session=session, caller=caller, consult_id=view.consult.id
                )
                if link.redeemed_at is not None
            ]
            if view.consult.status in ENDED
            else []
        )
    status = view.consult.status
    return render(
        request,
        "consults/call.html",
        view=view,
        seat=seat(view, caller, names),
        names=names,
        guest_names=guest_names,
        callable=status in CALLABLE,
        ended=status in ENDED,
        duration=duration_seconds(view),
        live_at=view.consult.live_at.isoformat() if view.consult.live_at else "",
        is_specialist=caller.role is Role.SPECIALIST,
    )


async def _guest_page(request: web.Request, consult_id: int) -> web.StreamResponse:
    """The call for a guest: no patient, no records, no end button; a link that no longer
    works says why (410), a credential of another consult is not found (404)."""
    async with db(request) as session:
        guest = await guests.guest_member(
            session=session, cookie_value=guest_credential(request), consult_id=consult_id
        )
        host = await guests.host_name(session=session, consult_id=consult_id) if guest else None
    if guest is None:
        raise NotFound(f"No consult {consult_id}.")
    if not guest.valid:
        return render(
            request,
            "consults/guest_link.html",
            status=410,
            target=None,
            message=guests.gone_message(guest.state),
        )
    return render(
        request,
        "consults/guest_call.html",
        consult_id=consult_id,
        seat=CallSeat(role="guest", name=guest.name, other=host or "the doctor"),
    )
