"""The event bus, in-process and on PostgreSQL LISTEN/NOTIFY, against the same expectations."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from server.events.bus import (
    MAX_PAYLOAD_BYTES,
    Delivery,
    EventBus,
    Subscription,
    encode_payload,
)
from server.events.lifetime import create_event_bus
from server.events.memory import InProcessEventBus
from server.events.postgres import PG_CHANNEL, PostgresEventBus, to_asyncpg_dsn
from tests.support import port_open, require

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TIMEOUT = 10.0

BusFactory = Callable[..., Awaitable[EventBus]]


def _require_postgres() -> None:
    """Skip when PostgreSQL does not answer, unless DOORSTEP_REQUIRE_ALL=1 demands it."""
    require(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432 does not answer")


@pytest.fixture(params=["memory", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        _require_postgres()
    return str(request.param)


@pytest.fixture
def postgres() -> str:
    _require_postgres()
    return "postgres"


@pytest.fixture
async def new_bus() -> AsyncIterator[BusFactory]:
    """Start buses on demand and close them all after the test."""
    started: list[EventBus] = []

    async def factory(kind: str, url: str = PG_URL, **options: Any) -> EventBus:
        bus = InProcessEventBus() if kind == "memory" else PostgresEventBus(url, **options)
        await bus.start()
        started.append(bus)
        return bus

    yield factory
    for bus in started:
        await bus.close()


@pytest.fixture
async def bus(kind: str, new_bus: BusFactory) -> EventBus:
    return await new_bus(kind)


@pytest.fixture
def channel() -> str:
    """A channel name no concurrent test run shares (NOTIFY is database-wide)."""
    return f"user:{uuid.uuid4().hex}"


async def receive(subscription: Subscription) -> Delivery:
    return await asyncio.wait_for(anext(subscription), TIMEOUT)


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll `predicate` until it holds, failing after TIMEOUT seconds."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        result = predicate()
        if await result if inspect.isawaitable(result) else result:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_delivers_only_subscribed_channels(bus: EventBus, channel: str) -> None:
    a, b, other = f"{channel}:a", f"{channel}:b", f"{channel}:other"
    async with (
        bus.subscribe(a) as sub_a,
        bus.subscribe(b) as sub_b,
        bus.subscribe(a, b) as sub_ab,
    ):
        await bus.publish(other, {"n": 0})
        await bus.publish(b, {"n": 1})
        await bus.publish(a, {"n": 2})
        # Order per publisher is kept, so anything wrongly delivered would come first.
        assert await receive(sub_a) == Delivery(a, {"n": 2})
        assert await receive(sub_b) == Delivery(b, {"n": 1})
        assert [await receive(sub_ab), await receive(sub_ab)] == [
            Delivery(b, {"n": 1}),
            Delivery(a, {"n": 2}),
        ]


async def test_keeps_publish_order(bus: EventBus, channel: str) -> None:
    async with bus.subscribe(channel) as sub:
        for n in range(200):
            await bus.publish(channel, {"n": n})
        assert [(await receive(sub)).event["n"] for _ in range(200)] == list(range(200))


async def test_every_subscriber_receives(bus: EventBus, channel: str) -> None:
    async with (
        bus.subscribe(channel) as s1,
        bus.subscribe(channel) as s2,
        bus.subscribe(channel) as s3,
    ):
        assert bus.subscriber_count(channel) == 3
        await bus.publish(channel, {"kind": "report.signed", "id": 7, "nested": {"ok": [1, None]}})
        expected = Delivery(
            channel, {"kind": "report.signed", "id": 7, "nested": {"ok": [1, None]}}
        )
        assert [await receive(s) for s in (s1, s2, s3)] == [expected] * 3


async def test_leaving_the_context_unsubscribes(bus: EventBus, channel: str) -> None:
    async with bus.subscribe(channel) as witness:
        async with bus.subscribe(channel) as sub:
            assert bus.subscriber_count(channel) == 2
            await bus.publish(channel, {"n": 1})
            assert await receive(sub) == Delivery(channel, {"n": 1})
        assert bus.subscriber_count(channel) == 1
        await bus.publish(channel, {"n": 2})
        assert (await receive(witness)).event == {"n": 1}
        assert (await receive(witness)).event == {"n": 2}
        with pytest.raises(StopAsyncIteration):
            await receive(sub)
        with pytest.raises(RuntimeError):
            await sub.__aenter__()
    assert bus.subscriber_count(channel) == 0


@pytest.mark.parametrize(
    "event",
    [{"x": object()}, {"x": math.nan}, {"x": {1, 2}}, {"x": b"bytes"}],
    ids=["object", "nan", "set", "bytes"],
)
async def test_rejects_events_that_are_not_json(
    bus: EventBus, channel: str, event: dict[str, Any]
) -> None:
    async with bus.subscribe(channel) as sub:
        with pytest.raises(ValueError, match="JSON"):
            await bus.publish(channel, event)
        await bus.publish(channel, {"after": True})
        assert await receive(sub) == Delivery(channel, {"after": True})


async def test_rejects_oversized_events_at_the_byte_limit(bus: EventBus, channel: str) -> None:
    overhead = len(encode_payload(channel, {"x": ""}).encode())
    room = MAX_PAYLOAD_BYTES - overhead
    largest = {"x": "a" * (room % 2) + "é" * (room // 2)}  # two UTF-8 bytes per "é"
    assert len(encode_payload(channel, largest).encode()) == MAX_PAYLOAD_BYTES
    async with bus.subscribe(channel) as sub:
        with pytest.raises(ValueError, match="limit"):
            await bus.publish(channel, {"x": largest["x"] + "a"})
        with pytest.raises(ValueError, match="limit"):
            await bus.publish(
                channel, {"x": "é" * (MAX_PAYLOAD_BYTES // 2)}
            )  # few chars, many bytes
        await bus.publish(channel, largest)
        assert await receive(sub) == Delivery(channel, largest)


async def test_slow_subscriber_drops_its_oldest_events(bus: EventBus, channel: str) -> None:
    async with bus.subscribe(channel, maxsize=5) as slow, bus.subscribe(channel) as fast:
        for n in range(20):
            await bus.publish(channel, {"n": n})
        # Fan-out hands each event to every subscription at once: once `fast` has
        # the last event, `slow` has been offered all twenty.
        assert [(await receive(fast)).event["n"] for _ in range(20)] == list(range(20))
        assert slow.dropped == 15
        assert fast.dropped == 0
        assert [(await receive(slow)).event["n"] for _ in range(5)] == [15, 16, 17, 18, 19]
        await bus.publish(channel, {"n": 20})  # nothing older is left behind it
        assert (await receive(slow)).event == {"n": 20}
        assert slow.dropped == 15


async def test_close_ends_iteration_and_leaves_no_tasks(kind: str, channel: str) -> None:
    before = asyncio.all_tasks()
    bus = InProcessEventBus() if kind == "memory" else PostgresEventBus(PG_URL)
    await bus.start()
    received: list[Delivery] = []

    async def consume() -> None:
        async with bus.subscribe(channel) as sub:
            async for delivery in sub:
                received.append(delivery)

    consumer = asyncio.create_task(consume())
    await eventually(lambda: bus.subscriber_count(channel) == 1, "the subscription")
    await bus.publish(channel, {"n": 1})
    await eventually(lambda: len(received) == 1, "the delivery")
    if kind == "postgres":
        assert asyncio.all_tasks() - before - {consumer}, "expected a listener task"
    await bus.close()
    await asyncio.wait_for(consumer, TIMEOUT)
    assert received == [Delivery(channel, {"n": 1})]
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(RuntimeError):
        await bus.publish(channel, {"n": 2})


async def test_cross_process_delivery(postgres: str, new_bus: BusFactory, channel: str) -> None:
    server_a = await new_bus(postgres)
    server_b = await new_bus(postgres)
    assert isinstance(server_a, PostgresEventBus)
    assert isinstance(server_b, PostgresEventBus)
    assert server_a.listener_pid != server_b.listener_pid
    async with server_a.subscribe(channel) as on_a, server_b.subscribe(channel) as on_b:
        await server_a.publish(channel, {"from": "a"})
        await server_b.publish(channel, {"from": "b"})
        assert [await receive(on_b), await receive(on_b)] == [
            Delivery(channel, {"from": "a"}),
            Delivery(channel, {"from": "b"}),
        ]
        assert (await receive(on_a)).event == {"from": "a"}


async def test_wire_format_and_close_releases_connections(postgres: str, channel: str) -> None:
    raw = await asyncpg.connect(to_asyncpg_dsn(PG_URL))
    notifications: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    await raw.add_listener(
        PG_CHANNEL, lambda _c, pid, _ch, payload: notifications.put_nowait((pid, payload))
    )
    try:
        bus = PostgresEventBus(PG_URL)
        await bus.start()
        listener_pid = bus.listener_pid
        await bus.publish(channel, {"n": 1})
        while True:  # other test runs may share the PostgreSQL channel
            publisher_pid, payload = await asyncio.wait_for(notifications.get(), TIMEOUT)
            if json.loads(payload)["c"] == channel:
                break
        assert json.loads(payload) == {"c": channel, "e": {"n": 1}}
        await bus.close()
        assert bus.listener_pid is None

        async def backends_gone() -> bool:
            pids = [listener_pid, publisher_pid]
            query = "SELECT count(*) FROM pg_stat_activity WHERE pid = any($1::int[])"
            remaining: int = await raw.fetchval(query, pids)
            return remaining == 0

        await eventually(backends_gone, "the bus's backends to exit")
    finally:
        await raw.close()


async def test_reconnects_after_the_listener_is_terminated(
    postgres: str, new_bus: BusFactory, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret_url = "postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:5432/postgres"  # trust auth
    # A long health interval: only the connection-lost signal can make this pass in time.
    bus = await new_bus(postgres, url=secret_url, health_interval=600, reconnect_delay=0.05)
    assert isinstance(bus, PostgresEventBus)
    old_pid = bus.listener_pid
    assert old_pid is not None
    async with bus.subscribe(channel) as sub:
        await bus.publish(channel, {"n": 0})
        assert (await receive(sub)).event == {"n": 0}
        with caplog.at_level(logging.WARNING, logger="server.events.postgres"):
            admin = await asyncpg.connect(to_asyncpg_dsn(PG_URL))
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", old_pid) is True
            finally:
                await admin.close()
            await eventually(lambda: bus.listener_pid not in (None, old_pid), "a new listener")
        await bus.publish(channel, {"n": 1})
        assert await receive(sub) == Delivery(channel, {"n": 1})
    assert "reconnect" in caplog.text
    assert "s3cret-pw" not in caplog.text


async def test_start_fails_when_postgres_is_unreachable() -> None:
    bus = PostgresEventBus("postgresql+asyncpg://postgres@127.0.0.1:1/postgres", connect_timeout=2)
    with pytest.raises(OSError, match=r"[Cc]onnect"):
        await bus.start()
    await bus.close()


def test_create_event_bus_chooses_by_url() -> None:
    assert isinstance(create_event_bus("sqlite+aiosqlite:///x.db"), InProcessEventBus)
    assert isinstance(create_event_bus(PG_URL), PostgresEventBus)
    assert to_asyncpg_dsn(PG_URL) == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert to_asyncpg_dsn("postgresql://u:p@h/db") == "postgresql://u:p@h/db"


def test_subscribe_validates_arguments() -> None:
    bus = InProcessEventBus()
    with pytest.raises(ValueError, match="channel"):
        bus.subscribe()
    with pytest.raises(ValueError, match="maxsize"):
        bus.subscribe("user:1", maxsize=0)
