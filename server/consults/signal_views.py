"""GET /api/v1/consults/{id}/signal: the signaling WebSocket of a consult's call."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.access import allow
from server.consults import service, signaling
from server.consults.models import ConsultStatus
from server.context import db, principal, recorder
from server.errors import Conflict, InvalidInput, NotFound
from server.identity import Principal, Role

CALLABLE = (ConsultStatus.ACCEPTED.value, ConsultStatus.LIVE.value)
"""Statuses of a consult whose call may be joined."""


def _consult_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"No consult {raw[:20]}.")
    return int(raw)


def member_of(view: service.View, caller: Principal) -> signaling.Member:
    """Who the caller is in the call: the accepted specialist hosts it, a GP participates.

    Guest links (a later part of the consults issue) will build a `guest` Member from
    their token here instead of from a signed-in caller.
    """
    host = view.consult.specialist_id == caller.user_id
    return signaling.Member(
        user_id=caller.user_id,
        name=caller.display_name or caller.username,
        role=signaling.HOST if host else signaling.PARTICIPANT,
    )


@allow(Role.GP, Role.SPECIALIST)
async def signal_socket(request: web.Request) -> web.StreamResponse:
    """Join a consult's call: refused before the upgrade unless the caller is a member (404)
    of a consult that was accepted or is live (409)."""
    consult_id = _consult_id(request)
    caller = principal(request)
    async with db(request) as session:
        view = await service.member(session=session, caller=caller, consult_id=consult_id)
    if view.consult.status not in CALLABLE:
        raise Conflict(
            f"Consult {consult_id} is {view.consult.status}: its call cannot be joined.",
            details={"status": view.consult.status},
        )
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
            member=member_of(view, caller),
            audit=recorder(request),
            consult_id=consult_id,
            org_id=view.consult.org_id,
        )
    finally:
        sockets.discard(socket)
        gauge.dec()
    return socket
