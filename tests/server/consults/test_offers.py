"""Offering in turn: decline and timeout move a request to the next on-duty specialist."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from server import keys
from server.app import create_app
from server.consults.lifetime import watch_once
from server.settings import Settings
from tests.server.consults.helpers import (
    act,
    asked,
    consult,
    on_duty,
    run_out,
    two_cardiologists_on_duty,
    user_id,
)
from tests.server.reading.people import second_cardiologist
from tests.support import Client, World, audit_actions


async def test_decline_then_timeout_then_nobody_left_expires(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    cardio, cardio2 = world.users["cardio"], await user_id(client, "cardio2")
    org = f"org:{world.orgs['clinic-a']}"
    bus = client.app[keys.EVENT_BUS]
    async with bus.subscribe(org, f"user:{cardio}", f"user:{cardio2}") as events:
        body = await asked(client, world)
        assert body["specialist"] == "cardio"  # never offered before; then the lower id
        status, declined = await act(client, world, body["id"], "decline", "cardio")
        assert status == 200
        assert (declined["status"], declined["specialist"]) == ("requested", "cardio2")
        status, _ = await act(client, world, body["id"], "accept", "cardio")
        assert status == 404  # declined: not theirs any more
        await run_out(client, body["id"])
        assert await watch_once(client.app) == [body["id"]]
        assert await watch_once(client.app) == []
        seen = [await anext(events) for _ in range(7)]
    final = await consult(client, world, body["id"])
    assert (final["status"], final["specialist"], final["offered_until"]) == (
        "expired",
        None,
        None,
    )
    got = [(d.channel, d.event["type"], d.event["consult"].get("specialist")) for d in seen]
    assert got == [
        (org, "consult.offered", "cardio"),
        (f"user:{cardio}", "consult.offered", "cardio"),
        (org, "consult.declined", None),
        (org, "consult.offered", "cardio2"),
        (f"user:{cardio2}", "consult.offered", "cardio2"),
        (f"user:{cardio2}", "consult.withdrawn", None),
        (org, "consult.expired", None),  # the GP is told
    ]
    assert seen[-1].event["consult"]["status"] == "expired"
    assert seen[-1].event["consult"]["id"] == body["id"]
    actions = [a for a, _, _ in await audit_actions(client.app, "consult.") if a != "consult.read"]
    assert actions == [
        "consult.request",
        "consult.offer",
        "consult.decline",
        "consult.offer",
        "consult.expire",  # cardio2's offer lapsed
        "consult.expire",  # nobody left
    ]


async def test_round_robin_least_recently_offered(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    first = await asked(client, world)
    second = await asked(client, world, patient="arthur")
    third = await asked(client, world)
    assert [c["specialist"] for c in (first, second, third)] == ["cardio", "cardio2", "cardio"]


async def test_a_lapsed_offer_moves_on_when_read(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    body = await asked(client, world)
    await run_out(client, body["id"])
    seen = await consult(client, world, body["id"])
    assert (seen["status"], seen["specialist"]) == ("requested", "cardio2")
    mine = await client.get("/api/v1/consults", headers=world.auth("cardio"))
    assert await mine.json() == []  # no longer offered to cardio
    status, accepted = await act(client, world, body["id"], "accept", "cardio2")
    assert (status, accepted["status"]) == (200, "accepted")
    taken = await client.get("/api/v1/consults", headers=world.auth("cardio2"))
    assert [c["id"] for c in await taken.json()] == [body["id"]]


async def test_a_lapsed_offer_cannot_be_accepted(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    body = await asked(client, world)
    await run_out(client, body["id"])
    status, _ = await act(client, world, body["id"], "accept", "cardio")
    assert status == 404  # lapsed: nobody else on duty, so it expired
    assert (await consult(client, world, body["id"]))["status"] == "expired"


async def test_nobody_on_duty_waits_then_expires(client: Client, world: World) -> None:
    body = await asked(client, world)
    assert (body["status"], body["specialist"]) == ("requested", None)
    assert await watch_once(client.app) == []
    assert (await consult(client, world, body["id"]))["status"] == "requested"
    await on_duty(client, world, "cardio")  # someone comes on duty: the watch offers it
    await watch_once(client.app)
    assert (await consult(client, world, body["id"]))["specialist"] == "cardio"
    late = await asked(client, world, specialty="neurology")
    await run_out(client, late["id"])
    await watch_once(client.app)
    assert (await consult(client, world, late["id"]))["status"] == "expired"


async def _next(events: Any, kind: str) -> Any:
    async for delivery in events:
        if delivery.event["type"] == kind:
            return delivery
    raise AssertionError("subscription ended")


async def test_the_background_watch_moves_offers_on(settings: Settings, world: World) -> None:
    quick = settings.model_copy(update={"consult_offer_seconds": 0.5, "consult_watch_seconds": 0.1})
    async with TestClient(TestServer(create_app(quick))) as client:
        world.tokens["cardio2"] = await second_cardiologist(client, world)
        await on_duty(client, world, "cardio", "cardio2")
        cardio2 = await user_id(client, "cardio2")
        async with client.app[keys.EVENT_BUS].subscribe(
            f"user:{cardio2}", f"org:{world.orgs['clinic-a']}"
        ) as events:
            body = await asked(client, world)
            assert body["specialist"] == "cardio"
            offered = await asyncio.wait_for(_next(events, "consult.offered"), 30)
            while offered.event["consult"]["specialist"] != "cardio2":
                offered = await asyncio.wait_for(_next(events, "consult.offered"), 30)
            assert offered.event["consult"]["id"] == body["id"]
            expired = await asyncio.wait_for(_next(events, "consult.expired"), 30)
            assert expired.event["consult"]["status"] == "expired"
        actions = [a for a, who, _ in await audit_actions(client.app, "consult.expire")]
        assert len(actions) == 3  # cardio's offer lapsed, cardio2's lapsed, nobody left
        watchers = {who for _, who, _ in await audit_actions(client.app, "consult.expire")}
        assert watchers == {"consult-watch"}
