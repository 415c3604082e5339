"""GET /api/v1/events: a WebSocket streaming the signed-in user's events."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from server import keys
from server.access import allow
from server.context import principal
from server.events import channels
from server.events.bus import Subscription
from server.identity import Principal, Role


async def _forward(subscription: Subscription, socket: web.WebSocketResponse) -> None:
    async for delivery in subscription:
        await socket.send_json({"channel": delivery.channel, "event": delivery.event})


def subscribed(caller: Principal) -> list[str]:
    """The channels a caller hears: their own, their organisation's, their specialties'.

    A kiosk hears its own only: its corner's channel tells of other kiosks' people.
    """
    if caller.role is Role.KIOSK:
        return [channels.user(caller.user_id)]
    names = [channels.user(caller.user_id), channels.org(caller.org_id)]
    if caller.role is Role.SPECIALIST:
        names += [channels.specialty(s) for s in caller.specialties]
    return names


@allow()
async def events_socket(request: web.Request) -> web.StreamResponse:
    """Stream the events of the caller's channels (`subscribed`) until either side closes."""
    caller = principal(request)
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await socket.prepare(request)
    sockets = request.app[keys.WEBSOCKETS]
    gauge = request.app[keys.METRICS].websockets
    sockets.add(socket)
    gauge.inc()
    try:
        async with request.app[keys.EVENT_BUS].subscribe(*subscribed(caller)) as subscription:
            await socket.send_json({"channel": "system", "event": {"type": "ready"}})
            forwarder = asyncio.create_task(_forward(subscription, socket))
            try:
                async for message in socket:
                    if message.type == WSMsgType.TEXT and message.data == "ping":
                        await socket.send_str("pong")
            finally:
                forwarder.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                    await forwarder
    finally:
        sockets.discard(socket)
        gauge.dec()
    return socket
