"""The signaling WebSocket: real aiortc peers call through it; members only; limits; live.

Every test runs on SQLite and on PostgreSQL against one application; the last one runs
two real `doorstep serve` processes on one PostgreSQL database, a doctor on each.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientConnectionError, ClientSession, WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError

from server import keys
from server.app import create_app
from server.consults import signaling
from server.consults.signaling import Reassembly, SignalError, channel, parse, split
from server.events.bus import Subscription, encode_payload
from server.settings import Settings
from tests.server.consults.calls import Signal, accepted_consult, call, guest_signal
from tests.server.consults.helpers import act, asked, consult, on_duty
from tests.server.reading.test_concurrency import two_servers  # noqa: F401  (a fixture)
from tests.support import Client, World, audit_events, audit_trail


async def _admitted(
    client: Client | ClientSession,
    other: Client | ClientSession | None,
    world: World,
    consult_id: int,
) -> tuple[Signal, Signal]:
    """The host (cardio) in the room and gp-a admitted by them: (gp, host)."""
    host = await Signal.open(other or client, consult_id, world.auth("cardio"))
    await host.join("host")
    await host.peers_become(host.peer)
    gp = await Signal.open(client, consult_id, world.auth("gp-a"))
    await gp.join("participant")
    await gp.next("lobby")
    knock = await host.next("knock")
    assert knock["peer"] == gp.peer
    assert knock["name"]
    await host.send("admit", peer=gp.peer)
    room = await gp.peers_become(gp.peer, host.peer)
    assert {p["peer"]: p["role"] for p in room} == {gp.peer: "participant", host.peer: "host"}
    await host.peers_become(gp.peer, host.peer)
    return gp, host


async def test_two_aiortc_peers_call_through_the_server_and_chat(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, None, world, consult_id)
    caller, callee = None, None
    try:
        caller, callee, _ = await call(gp, host)
        at_host, at_gp = await asyncio.gather(callee.frames(5), caller.frames(5))
        assert all(f.width == 160 and f.height == 120 for f in at_host + at_gp)
        await gp.send("chat", text="  ST elevation in V2-V4?  ")
        said = await host.next("chat")
        assert said == {"type": "chat", "from": gp.peer, "text": "ST elevation in V2-V4?"}
        await host.send("chat", text="Yes: send her to the cath lab.")
        assert (await gp.next("chat"))["text"] == "Yes: send her to the cath lab."
        await host.send("view", state={"series": "1.2.3", "frame": 4, "window": [40, 400]})
        viewed = await gp.next("view")
        assert viewed["from"] == host.peer
        assert viewed["state"]["frame"] == 4
        assert len(await callee.frames(3)) == 3, "the call goes on after the chat"
    finally:
        for peer in (caller, callee):
            if peer is not None:
                await peer.close()
    await gp.send("leave")
    assert await gp.closed() == 1000
    await host.peers_become(host.peer)
    await host.close()
    record = await consult(client, world, consult_id)
    assert [n["text"] for n in record["notes"]] == [
        "ST elevation in V2-V4?",
        "Yes: send her to the cath lab.",
    ]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.chat")] == ["gp-a", "cardio"]
    await _until_empty(client)
    joins = await audit_trail(client.app, "consult.join")
    leaves = await audit_trail(client.app, "consult.leave")
    assert [(a, o) for a, o, _ in joins] == [("cardio", str(consult_id)), ("gp-a", str(consult_id))]
    assert sorted(a for a, _, _ in leaves) == ["cardio", "gp-a"]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.admit")] == ["gp-a"]


async def _until_empty(client: Client) -> None:
    """Wait until the server has seen every socket of the test go (its rooms are empty)."""
    rooms = client.app[keys.CONSULT_ROOMS]
    for _ in range(600):
        if not rooms.rooms:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"rooms left: {list(rooms.rooms)}")


async def test_only_members_of_an_accepted_consult_join_and_others_see_nothing(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, None, world, consult_id)
    for stranger in ("gp-b", "radio"):
        with pytest.raises(WSServerHandshakeError) as refused:
            await Signal.open(client, consult_id, world.auth(stranger))
        assert refused.value.status == 404
    with pytest.raises(WSServerHandshakeError) as anonymous:
        await Signal.open(client, consult_id, {})
    assert anonymous.value.status == 401
    with pytest.raises(WSServerHandshakeError) as kiosk:  # a kiosk, of a clinic's consult
        await Signal.open(client, consult_id, world.auth("kiosk"))
    assert kiosk.value.status == 404
    with pytest.raises(WSServerHandshakeError) as unknown:
        await Signal.open(client, consult_id + 1000, world.auth("gp-a"))
    assert unknown.value.status == 404
    await host.send("chat", text="still just us")
    assert await gp.receive() == {"type": "chat", "from": host.peer, "text": "still just us"}
    assert [m["type"] for m in gp.seen if m["type"] in ("peers", "knock")][-1] == "peers"
    assert [p for p in gp.seen if p["type"] == "knock"] == []
    refusals = await audit_trail(client.app, "consult.join")
    assert sorted(a for a, _, _ in refusals) == ["cardio", "gp-a"]
    await gp.close()
    await host.close()


async def test_a_requested_consult_has_no_call_yet(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    requested = await asked(client, world)
    for user in ("gp-a", "cardio"):
        with pytest.raises(WSServerHandshakeError) as early:
            await Signal.open(client, requested["id"], world.auth(user))
        assert early.value.status == 409


async def test_bad_oversized_and_flooded_messages_are_refused_and_the_call_goes_on(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, None, world, consult_id)
    await gp.socket.send_str("{not json")
    assert (await gp.next("error"))["code"] == "bad_message"
    await gp.send("shout", text="?")
    assert (await gp.next("error"))["code"] == "bad_message"
    await gp.send("offer", to="nobody-here", sdp="v=0")
    assert (await gp.next("error"))["code"] == "unknown_peer"
    await gp.send("admit", peer=host.peer)
    assert (await gp.next("error"))["code"] == "not_host"

    big = await guest_signal(client, world, consult_id, "Interpreter")
    await host.send("admit", peer=big.peer)
    await gp.peers_become(gp.peer, host.peer, big.peer)
    await big.send("chat", text="x" * (64 * 1024))
    assert (await big.next("error"))["code"] == "message_too_big"
    assert await big.closed() == 1009
    await gp.peers_become(gp.peer, host.peer)

    flood = await guest_signal(client, world, consult_id, "Relative")
    await host.send("admit", peer=flood.peer)
    await gp.peers_become(gp.peer, host.peer, flood.peer)
    sent = 0
    try:
        for _ in range(5000):
            await flood.send("candidate", to=gp.peer, candidate=None)
            sent += 1
    except (ClientConnectionError, ConnectionError):
        pass
    codes = []
    while (message := await flood.receive()) is not None:
        if message["type"] == "error":
            codes.append(message["code"])
    assert codes
    assert set(codes) == {"rate_limited"}
    assert flood.socket.close_code == 1008
    assert sent > 100
    await gp.peers_become(gp.peer, host.peer)
    relayed = [m for m in gp.seen if m["type"] == "candidate"]
    assert 100 <= len(relayed) < sent, "the burst passed, the flood did not"

    await host.send("chat", text="are you still there?")
    assert (await gp.next("chat"))["text"] == "are you still there?"
    await gp.send("chat", text="yes")
    assert (await host.next("chat"))["text"] == "yes"
    assert not gp.socket.closed
    assert not host.socket.closed
    await gp.close()
    await host.close()


async def test_the_consult_goes_live_once_both_doctors_are_in_the_room_and_its_end_closes_the_call(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    gp = await Signal.open(client, consult_id, world.auth("gp-a"))
    await gp.join("participant")
    await gp.next("lobby")
    await gp.send("chat", text="may I come in?")
    assert (await gp.next("error"))["code"] == "not_admitted"
    assert (await consult(client, world, consult_id))["status"] == "accepted"
    await host.send("admit", peer=(await host.next("knock"))["peer"])
    await gp.peers_become(gp.peer, host.peer)
    for _ in range(600):
        if (await consult(client, world, consult_id))["status"] == "live":
            break
        await asyncio.sleep(0.05)
    assert (await consult(client, world, consult_id))["status"] == "live"
    assert [a for a, _, _ in await audit_trail(client.app, "consult.live")] == ["cardio"]
    await gp.close()
    back = await gp_again(client, world, consult_id, host)
    status, _ = await act(client, world, consult_id, "end", "gp-a")
    assert status == 200
    for socket in (host, back):
        assert (await socket.next("error"))["code"] == "ended"
        assert await socket.closed() == 1000, (socket is host, socket.seen[-3:])
    with pytest.raises(WSServerHandshakeError) as over:
        await Signal.open(client, consult_id, world.auth("cardio"))
    assert over.value.status == 409


async def gp_again(client: Client, world: World, consult_id: int, host: Signal) -> Signal:
    """A GP who was admitted comes back (page reload) straight into the room."""
    back = await Signal.open(client, consult_id, world.auth("gp-a"))
    await back.join("participant")
    await back.peers_become(back.peer, host.peer)
    assert [m for m in back.seen if m["type"] == "lobby"] == []
    return back


# Two server processes on one PostgreSQL database ------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_doctors_on_two_server_processes_call_and_chat(
    client: Client,
    world: World,
    two_servers: list[ClientSession],  # noqa: F811
) -> None:
    consult_id = await accepted_consult(client, world)
    one, other = two_servers
    gp, host = await _admitted(one, other, world, consult_id)
    caller, callee = None, None
    try:
        caller, callee, offer = await call(gp, host, tracks=5)
        assert len(json.dumps({"type": "offer", "sdp": offer})) > 7000, "split over NOTIFYs"
        at_host, at_gp = await asyncio.gather(callee.frames(3), caller.frames(3))
        assert len(at_host) == len(at_gp) == 3
        await gp.send("chat", text="hello from process one")
        assert (await host.next("chat"))["text"] == "hello from process one"
        await host.send("chat", text="hello from process two")
        assert (await gp.next("chat"))["text"] == "hello from process two"
    finally:
        for peer in (caller, callee):
            if peer is not None:
                await peer.close()
    await gp.close()
    await host.peers_become(host.peer)
    for _ in range(600):
        if (await consult(client, world, consult_id))["status"] == "live":
            break
        await asyncio.sleep(0.05)
    assert (await consult(client, world, consult_id))["status"] == "live"
    await host.close()


# The parts of the protocol that need no server ---------------------------------------


def test_a_message_above_the_bus_limit_travels_in_parts_and_is_whole_again() -> None:
    sdp = "".join(
        f"a=candidate:{n} 1 udp 2130706431 192.0.2.{n % 250} {n} typ host\r\n" for n in range(400)
    )
    message = {"k": "relay", "to": "p1", "msg": {"type": "offer", "from": "p2", "sdp": sdp + "é✓"}}
    parts = split("node-a", message)
    assert len(parts) > 2
    for part in parts:
        encode_payload(channel(7), part)  # each fits in one NOTIFY (ValueError otherwise)
    whole = Reassembly(timeout=60)
    assert [whole.add(p) for p in reversed(parts[1:])] == [None] * (len(parts) - 1)
    assert whole.add(parts[0]) == message
    assert whole.pending == 0
    small = split("node-a", {"k": "presence", "peers": []})
    assert small == [{"n": "node-a", "m": {"k": "presence", "peers": []}}]


def test_parts_that_never_complete_are_dropped_and_bad_parts_ignored() -> None:
    parts = split("node-a", {"k": "relay", "msg": {"sdp": "x" * 20_000}})
    lost = Reassembly(timeout=-1)  # every pending message is past its time at once
    assert lost.add(parts[0]) is None
    assert lost.pending == 1
    lost.sweep()
    assert lost.pending == 0
    assert lost.dropped == 1
    for rest in parts[1:]:
        assert lost.add(rest) is None, "a message missing its first part never comes out"
    bad = Reassembly(timeout=60)
    assert bad.add({"n": "a", "x": "1", "i": 3, "of": 2, "d": "e30="}) is None
    assert bad.add({"n": "a", "x": "1", "i": 0, "of": 1000, "d": "e30="}) is None
    assert bad.add({"n": "a", "x": "2", "i": 0, "of": 1, "d": "!!"}) is None
    assert bad.pending == 0
    assert bad.add({"n": "a", "x": "3", "i": 0, "of": 1, "d": "e30="}) == {}


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"type": "offer", "to": "p", "sdp": ""}',
        '{"type": "offer", "sdp": "v=0"}',
        '{"type": "candidate", "to": "p"}',
        '{"type": "candidate", "to": "p", "candidate": {"sdpMid": "0"}}',
        '{"type": "candidate", "to": "p", "candidate": {"candidate": "c", "sdpMLineIndex": "0"}}',
        '{"type": "chat", "text": "   "}',
        '{"type": "view", "state": [1]}',
        '{"type": "admit"}',
        '{"type": 3}',
    ],
)
def test_malformed_messages_are_refused(text: str) -> None:
    with pytest.raises(SignalError) as refused:
        parse(text)
    assert refused.value.code == "bad_message"


def test_messages_are_reduced_to_their_known_fields() -> None:
    assert parse('{"type": "join", "as": "admin"}') == {"type": "join"}
    assert parse(
        '{"type": "candidate", "to": "p", "from": "forged",'
        ' "candidate": {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0, "x": 1}}'
    ) == {
        "type": "candidate",
        "to": "p",
        "candidate": {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0},
    }


async def test_a_full_room_refuses_one_more(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    limit = client.app[keys.CONSULT_ROOMS].limits.max_peers
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    inside = [host]
    for n in range(limit - 1):
        inside.append(await guest_signal(client, world, consult_id, f"Guest {n}"))
    extra = await Signal.open(client, consult_id, world.auth("gp-a"))
    await extra.send("join")
    assert (await extra.next("error"))["code"] == "room_full"
    await inside[1].close()
    await extra.join("participant")
    await extra.next("lobby")
    for socket in [extra, *inside[2:], host]:
        await socket.close()


async def test_another_process_peers_are_heard_on_the_bus_and_forgotten_when_it_falls_silent(
    settings: Settings, world: World
) -> None:
    quick = settings.model_copy(update={"consult_presence_seconds": 0.2})
    async with TestClient(TestServer(create_app(quick))) as client:
        consult_id = await accepted_consult(client, world)
        bus = client.app[keys.EVENT_BUS]
        async with bus.subscribe(channel(consult_id)) as heard:
            host = await Signal.open(client, consult_id, world.auth("cardio"))
            await host.join("host")
            asked_for = await _next_on_bus(heard, "presence")
            assert asked_for["ask"] is True
            assert [p["peer"] for p in asked_for["peers"]] == [host.peer]
            ghost = {"peer": "ghost-peer", "name": "GP elsewhere", "role": "participant"}
            presence = {"k": "presence", "peers": [{**ghost, "user": None, "state": "lobby"}]}
            await bus.publish(channel(consult_id), {"n": "ghost-node", "m": presence})
            assert await host.next("knock") == {
                "type": "knock",
                "peer": "ghost-peer",
                "name": "GP elsewhere",
            }
            await host.send("admit", peer="ghost-peer")
            admit = await _next_on_bus(heard, "admit")
            assert admit["peer"] == "ghost-peer"
            inside = {"k": "presence", "peers": [{**ghost, "user": None, "state": "room"}]}
            await bus.publish(channel(consult_id), {"n": "ghost-node", "m": inside})
            await host.peers_become(host.peer, "ghost-peer")
            await host.send("offer", to="ghost-peer", sdp="v=0\r\n" + "a=x\r\n" * 3000)
            relay = await _next_on_bus(heard, "relay")
            assert relay["to"] == "ghost-peer"
            assert relay["msg"]["from"] == host.peer
            assert relay["msg"]["sdp"].startswith("v=0")
            await host.peers_become(host.peer)  # the ghost process fell silent
            await host.close()


async def _next_on_bus(heard: Subscription, kind: str) -> dict[str, Any]:
    """The next message of this kind on a room's channel, whole again if it came in parts."""
    whole = Reassembly(timeout=60)
    async for delivery in heard:
        event = delivery.event
        message = whole.add(event) if "x" in event else event.get("m")
        if isinstance(message, dict) and message.get("k") == kind:
            return message
    raise AssertionError("the bus closed")


async def test_shutting_the_server_down_closes_the_call_sockets(
    client: Client, settings: Settings, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    server = TestServer(create_app(settings))
    await server.start_server()
    closing = None
    async with ClientSession(base_url=str(server.make_url("/"))) as http:
        try:
            host = await Signal.open(http, consult_id, world.auth("cardio"))
            await host.join("host")
            await host.peers_become(host.peer)
        finally:
            closing = asyncio.ensure_future(server.close())
        assert await host.closed() == 1001
    await closing


async def test_joining_again_replaces_the_older_socket_of_the_same_user(
    client: Client, world: World
) -> None:
    """A reload or a changed network opens a new socket while the old one may look alive: the
    new one takes the user's place (straight into the room: admitted before) and the old one is
    told and closed, so that nobody sees the user twice."""
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, None, world, consult_id)
    again = await Signal.open(client, consult_id, world.auth("gp-a"))
    await again.join("participant")
    room = await again.peers_become(again.peer, host.peer)
    assert {p["peer"]: p["role"] for p in room} == {again.peer: "participant", host.peer: "host"}
    replaced = await gp.next("error")
    assert replaced["code"] == "replaced", replaced
    assert await gp.closed() == 1000
    await host.peers_become(again.peer, host.peer)
    assert [m for m in again.seen if m["type"] == "lobby"] == []
    await host.send("chat", text="you are back")
    assert (await again.next("chat"))["text"] == "you are back"
    leaves = await audit_events(client.app, "consult.leave")
    assert [json.loads(e.details)["how"] for e in leaves] == ["replaced"], leaves
    await again.close()
    await host.close()


async def test_opening_a_study_together_is_audited_once_per_study(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, None, world, consult_id)
    for state in (
        {"control": host.peer, "study": "1.2.3"},
        {"control": host.peer, "study": "1.2.3", "image": {"frame": 2}},
        {"control": host.peer},
        {"control": host.peer, "study": None},
        {"control": host.peer, "study": "1.2.4"},
    ):
        await host.send("view", state=state)
        assert (await gp.next("view"))["state"] == state
    views = await audit_events(client.app, "consult.view")
    assert [json.loads(e.details)["study"] for e in views] == ["1.2.3", "1.2.4"]
    assert {e.actor for e in views} == {"cardio"}
    await gp.close()
    await host.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_peer_admitted_while_its_join_is_recorded_hears_lobby_first(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host may admit a knock before the waiting peer's join is audited: `lobby` first."""
    rooms = client.app[keys.CONSULT_ROOMS]
    record = rooms._audit

    async def slowly(connection: Any, room: Any, action: str, details: dict[str, Any]) -> None:
        if action == "consult.join":  # the GP's join is recorded well after the host's
            await asyncio.sleep(0.5 if connection.member.role == "host" else 1.5)
        await record(connection, room, action, details)

    monkeypatch.setattr(rooms, "_audit", slowly)
    consult_id = await accepted_consult(client, world)
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.send("join")
    await host.next("welcome")
    gp = await Signal.open(client, consult_id, world.auth("gp-a"))
    await gp.send("join")
    knock = await host.next("knock")
    await host.send("admit", peer=knock["peer"])
    await gp.next("peers")
    assert [m["type"] for m in gp.seen] == ["welcome", "lobby", "peers"]
    await gp.close()
    await host.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_join_whose_audit_write_is_refused_for_a_moment_is_recorded_all_the_same(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's one writer busy past its timeout ("database is locked") must not lose a join."""
    rooms = client.app[keys.CONSULT_ROOMS]
    group = rooms.write_group
    assert group is not None
    run = group.run
    refusals = []

    async def busy_twice(work: Any) -> Any:
        if len(refusals) < 2:
            refusals.append(work)
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return await run(work)

    monkeypatch.setattr(group, "run", busy_twice)
    monkeypatch.setattr(signaling, "AUDIT_RETRY_SECONDS", 0.01)
    consult_id = await accepted_consult(client, world)
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    await host.peers_become(host.peer)
    await host.close()
    for _ in range(200):
        if await audit_trail(client.app, "consult.join"):
            break
        await asyncio.sleep(0.05)
    assert len(refusals) == 2
    assert [actor for actor, _, _ in await audit_trail(client.app, "consult.join")] == ["cardio"]
