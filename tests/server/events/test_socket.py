"""The /api/v1/events WebSocket streams only the caller's own events."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSServerHandshakeError

from server import keys
from server.events import channels
from tests.support import Client, World


async def test_socket_streams_user_and_org_events_only(client: Client, world: World) -> None:
    bus = client.app[keys.EVENT_BUS]
    async with client.ws_connect("/api/v1/events", headers=world.auth("gp-a")) as socket:
        assert await socket.receive_json(timeout=5) == {
            "channel": "system",
            "event": {"type": "ready"},
        }
        await bus.publish(channels.user(world.users["gp-b"]), {"type": "secret-of-b"})
        await bus.publish(channels.org(world.orgs["clinic-b"]), {"type": "clinic-b-news"})
        await bus.publish(channels.user(world.users["gp-a"]), {"type": "report.ready", "id": 1})
        await bus.publish(channels.org(world.orgs["clinic-a"]), {"type": "clinic-a-news"})
        received = [await socket.receive_json(timeout=5) for _ in range(2)]
        assert received == [
            {"channel": f"user:{world.users['gp-a']}", "event": {"type": "report.ready", "id": 1}},
            {"channel": f"org:{world.orgs['clinic-a']}", "event": {"type": "clinic-a-news"}},
        ]
        await socket.send_str("ping")
        assert await socket.receive_str(timeout=5) == "pong"
    for _ in range(50):
        if not client.app[keys.WEBSOCKETS]:
            break
        await asyncio.sleep(0.02)
    assert not client.app[keys.WEBSOCKETS]


async def test_socket_refuses_anonymous_and_cross_origin_sessions(
    client: Client, world: World
) -> None:
    with pytest.raises(WSServerHandshakeError) as anonymous:
        await client.ws_connect("/api/v1/events")
    assert anonymous.value.status == 401
    response = await client.post(
        "/api/v1/auth/login", json={"username": "gp-a", "password": "correct horse battery"}
    )
    assert response.status == 200
    with pytest.raises(WSServerHandshakeError) as hijack:
        await client.ws_connect("/api/v1/events", headers={"Origin": "https://evil.example"})
    assert hijack.value.status == 403
    async with client.ws_connect(
        "/api/v1/events", headers={"Origin": f"http://{client.host}:{client.port}"}
    ) as socket:
        assert (await socket.receive_json(timeout=5))["event"] == {"type": "ready"}
