"""GET /api/v1/consults/{id}/signal: the signaling WebSocket of a consult's call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server import keys
from server.access import allow
from server.consults import guests, paths, service, signaling
from server.consults.models import CALLABLE
from server.context import client_addr, db, guest_credential, principal, recorder
from server.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from server.identity import Principal, Role

if TYPE_CHECKING:
    from server.audit.service import Recorder


def member_of(view: service.View, caller: Principal) -> signaling.Member:
    """Who the caller is in the call: the accepted specialist hosts it, a GP participates, and
    so does a kiosk (without the lobby: the specialist took its person from the queue)."""
    host = view.consult.specialist_id == caller.user_id
    return signaling.Member(
        user_id=caller.user_id,
        name=caller.display_name or caller.username,
        role=signaling.HOST if host else signaling.PARTICIPANT,
        admitted=caller.role is Role.KIOSK,
    )


def guest_of(guest: guests.GuestMember) -> signaling.Member:
    """A guest in the call: named by the link's label, always waiting in the lobby first."""
    return signaling.Member(
        user_id=None, name=guest.name, role=signaling.GUEST, guest_id=guest.guest_id
    )


async def _guest(request: web.Request, consult_id: int) -> tuple[signaling.Member, Recorder, int]:
    """The guest a guest credential (cookie or `Authorization: Guest`) makes the caller.

    Not a guest of this consult: 404; a guest whose access ended (the link expired or was
    revoked): 401; a consult that is over: 409.
    """
    async with db(request) as session:
        guest = await guests.guest_member(
            session=session, cookie_value=guest_credential(request), consult_id=consult_id
        )
    if guest is None:
        raise NotFound(f"No consult {consult_id}.")
    if guest.state is guests.LinkState.ENDED:
        raise Conflict(
            f"Consult {consult_id} is over: its call cannot be joined.",
            details={"status": "ended"},
        )
    if not guest.valid:
        raise NotAuthenticated(
            f"Your guest access has {guest.state.value}; ask the doctor for a new link."
        )
    audit = recorder(request).acting_as(guests.guest_actor(guest, client_addr=client_addr(request)))
    return guest_of(guest), audit, guest.org_id


@allow(Role.GP, Role.SPECIALIST, Role.KIOSK, guest=True)
async def signal_socket(request: web.Request) -> web.StreamResponse:
    """Join a consult's call: refused before the upgrade unless the caller is a member (404)
    of a consult that was accepted or is live (409), or a guest of it (its guest cookie, or
    `Authorization: Guest <credential>`) whose access still holds (401)."""
    consult_id = paths.consult_id(request)
    if request.get(keys.PRINCIPAL) is None:
        member, audit, org_id = await _guest(request, consult_id)
    else:
        caller = principal(request)
        async with db(request) as session:
            view = await service.member(session=session, caller=caller, consult_id=consult_id)
        if view.consult.status not in CALLABLE:
            raise Conflict(
                f"Consult {consult_id} is {view.consult.status}: its call cannot be joined.",
                details={"status": view.consult.status},
            )
        member, audit, org_id = member_of(view, caller), recorder(request), view.consult.org_id
    rooms = request.app[keys.CONSULT_ROOMS]
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=rooms.limits.frame_bytes)
    if not socket.can_prepare(request).ok:
        raise InvalidInput("This is a WebSocket: connect with an Upgrade request.")
    await socket.prepare(request)
    sockets = request.app[keys.WEBSOCKETS]
    gauge = request.app[keys.METRICS].websockets
    sockets.add(socket)
    gauge.inc()
    try:
        await rooms.serve(
            socket=socket,
            member=member,
            audit=audit,
            consult_id=consult_id,
            org_id=org_id,
        )
    finally:
        sockets.discard(socket)
        gauge.dec()
    return socket
