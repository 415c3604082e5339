""" "See an expert now": the walk-in queue from a kiosk visit to a call with the specialist."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import WSServerHandshakeError
from sqlalchemy import select, update

from server import keys
from server.consults import service
from server.consults.lifetime import WATCH_ACTOR
from server.consults.models import Consult, ConsultOffer
from server.kiosk import queue as kiosk_queue
from tests.server.consults.calls import WAIT, Signal
from tests.server.consults.helpers import act, consult, on_duty, run_out
from tests.server.kiosk.visits import check_in, queue, second_kiosk, vitals
from tests.support import Client, World, audit_actions


async def _settle(client: Client) -> None:
    """Run the offer watch's step once (what the background watch does every few seconds)."""
    app = client.app
    async with app[keys.SESSIONMAKER]() as session, session.begin():
        await service.settle(
            session=session,
            audit=app[keys.AUDIT].recorder(WATCH_ACTOR),
            bus=app[keys.EVENT_BUS],
            policy=service.Policy.of(app[keys.SETTINGS]),
        )


async def test_an_urgent_flag_queues_for_cardiology_and_the_on_duty_specialist_is_offered_it(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    visit = (await check_in(client, world))["id"]
    await vitals(client, world, visit, systolic=186, diastolic=96)
    status, place = await queue(client, world, visit)
    assert status == 201
    assert place["specialty"] == "cardiology"
    assert place["status"] == "waiting"
    assert place["position"] == 1
    assert place["on_duty"] == 1
    assert place["estimated_wait_s"] == kiosk_queue.ANSWER_S
    offered = await consult(client, world, place["consult_id"], "cardio")
    assert offered["walk_in"] is True
    assert offered["clinic"] == "corner"
    assert "hypertensive_crisis" in offered["reason"]
    again_status, again = await queue(client, world, visit)
    assert again_status == 200
    assert again["consult_id"] == place["consult_id"]
    status, _ = await act(client, world, place["consult_id"], "accept", "cardio")
    assert status == 200
    status, taken = await queue(client, world, visit, method="GET")
    assert status == 200
    assert taken["status"] == "accepted"
    assert taken["position"] == 0
    assert taken["specialist"]
    assert ("kiosk.queue", "kiosk", "success") in await audit_actions(client.app, "kiosk.")


async def test_the_position_and_the_wait_count_the_people_ahead_over_those_on_duty(
    client: Client, world: World
) -> None:
    await second_kiosk(client, world)
    first = (await check_in(client, world))["id"]
    second = (await check_in(client, world, kiosk="kiosk2", phone="13900000003"))["id"]
    _, ahead = await queue(client, world, first)
    _, behind = await queue(client, world, second, kiosk="kiosk2")
    assert ahead["specialty"] == behind["specialty"] == "general"
    assert (ahead["position"], behind["position"]) == (1, 2)
    assert ahead["estimated_wait_s"] is None
    assert ahead["on_duty"] == 0
    for _ in range(2):  # the first offer time runs out: a walk-in keeps waiting
        await run_out(client, ahead["consult_id"])
        await _settle(client)
    _, still = await queue(client, world, first, method="GET")
    assert still["status"] == "waiting"
    gp_duty = await client.put("/api/v1/duty", json={"on_duty": True}, headers=world.auth("cardio"))
    assert gp_duty.status == 200  # cardio is no generalist: still nobody for "general"
    _, still = await queue(client, world, second, kiosk="kiosk2", method="GET")
    assert still["on_duty"] == 0


async def test_a_walk_in_goes_round_again_after_a_decline_instead_of_expiring(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    visit = (await check_in(client, world))["id"]
    _, place = await queue(client, world, visit, specialty="cardiology")
    consult_id = place["consult_id"]
    status, _ = await act(client, world, consult_id, "decline", "cardio")
    assert status == 200
    _, waiting = await queue(client, world, visit, method="GET")
    assert waiting["status"] == "waiting"
    await _settle(client)  # too soon after the decline: not offered to cardio again yet
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Consult, consult_id)
        assert row is not None
        assert row.offered_to is None
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ConsultOffer)
            .where(ConsultOffer.consult_id == consult_id)
            .values(answered_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    await _settle(client)
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Consult, consult_id)
        offers = list(
            await session.scalars(
                select(ConsultOffer.outcome).where(ConsultOffer.consult_id == consult_id)
            )
        )
    assert row is not None
    assert row.offered_to == world.users["cardio"]
    assert offers == ["offered"]


async def test_leaving_the_queue_or_finishing_ends_the_walk_in_consult(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    visit = (await check_in(client, world))["id"]
    _, place = await queue(client, world, visit)
    status, _ = await queue(client, world, visit, method="DELETE")
    assert status == 204
    _, gone = await queue(client, world, visit, method="GET")
    assert gone["status"] == "ended"
    _, new_place = await queue(client, world, visit, specialty="cardiology")
    assert new_place["consult_id"] != place["consult_id"]
    status, _ = await act(client, world, new_place["consult_id"], "accept", "cardio")
    assert status == 200
    finished = await client.post(
        f"/api/v1/kiosk/visits/{visit}/finish", headers=world.auth("kiosk")
    )
    assert finished.status == 204
    ended = await consult(client, world, new_place["consult_id"], "cardio")
    assert ended["status"] == "ended"


async def test_the_kiosk_hears_the_accept_and_joins_the_call_without_the_lobby(
    client: Client, world: World
) -> None:
    await second_kiosk(client, world)
    await on_duty(client, world, "cardio")
    visit = (await check_in(client, world))["id"]
    async with (
        client.ws_connect("/api/v1/events", headers=world.auth("kiosk")) as events,
        client.ws_connect("/api/v1/events", headers=world.auth("kiosk2")) as other_kiosk,
    ):
        for socket in (events, other_kiosk):
            ready = json.loads((await asyncio.wait_for(socket.receive(), WAIT)).data)
            assert ready["event"]["type"] == "ready"
        _, place = await queue(client, world, visit, specialty="cardiology")
        consult_id = place["consult_id"]
        status, _ = await act(client, world, consult_id, "accept", "cardio")
        assert status == 200
        while True:
            heard = json.loads((await asyncio.wait_for(events.receive(), WAIT)).data)
            if heard["event"]["type"] == "consult.accepted":
                break
        assert heard["event"]["consult"]["id"] == consult_id
        with_nothing = None
        with contextlib.suppress(TimeoutError):
            with_nothing = await asyncio.wait_for(other_kiosk.receive(), 0.5)
        assert with_nothing is None, "another kiosk of the corner hears nothing of this visit"
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    kiosk = await Signal.open(client, consult_id, world.auth("kiosk"))
    await kiosk.join("participant")
    await host.peers_become(host.peer, kiosk.peer)  # `peers` lists those in the room only
    assert not [m for m in host.seen if m["type"] == "lobby" and m.get("peers")]
    with pytest.raises(WSServerHandshakeError) as outsider:
        await Signal.open(client, consult_id, world.auth("kiosk2"))
    assert outsider.value.status == 404
    ice = await client.get(f"/api/v1/consults/{consult_id}/ice", headers=world.auth("kiosk"))
    assert ice.status == 200
    await kiosk.close()
    await host.close()
