"""Fifty readers at once: no reading request is ever held by two readers, and none is lost.

On SQLite and on PostgreSQL, against one application, and on PostgreSQL against two real
`doorstep serve` processes sharing one database. Each test checks the answers every
reader got, the rows in the database at the end, and the audit chain, whose order is the
order in which the database committed the claims and releases.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import ClientSession

from server import keys
from server.reading.models import Status
from server.settings import Settings
from tests.server.reading import crowd
from tests.server.reading.crowd import Reader, Tally
from tests.server.reading.requests import asked, stored_study
from tests.support import Client, World, free_port

READERS = 50
QUEUE = 200
REPO = Path(__file__).resolve().parents[3]
READY_TIMEOUT = 60.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with the SLA watch out of the way (it would lapse claims itself)."""
    return settings.model_copy(update={"reading_watch_seconds": 3600.0})


async def _crowd(client: Client, count: int = READERS) -> list[Reader]:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        return await crowd.readers(session, count=count)


async def _queue(client: Client, world: World, study: str) -> list[int]:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        return await crowd.queue(
            session, study_uid=study, requested_by=world.users["gp-a"], count=QUEUE
        )


async def _rows(client: Client, ids: list[int]) -> dict[int, crowd.Row]:
    async with client.app[keys.SESSIONMAKER]() as session:
        return await crowd.rows(session, ids)


async def _trail(client: Client, ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    async with client.app[keys.SESSIONMAKER]() as session:
        return await crowd.trail(session, ids)


def _assert_one_holder_each(
    ids: list[int],
    tally: Tally,
    rows: dict[int, crowd.Row],
    trail: dict[int, list[tuple[str, str]]],
    people: list[Reader],
) -> None:
    """Each request held by exactly the one reader whose claim stood, in the rows and the chain."""
    assert tally.errors == []
    assert not [s for s in tally.statuses if s >= 500]
    kept = tally.kept()
    assert sorted(kept) == ids, "a request was lost, or one outside the queue was claimed"
    assert {i: h for i, h in kept.items() if len(h) != 1} == {}, "two readers kept one request"
    by_id = {r.user_id: r.username for r in people}
    now = datetime.now(UTC)
    for request_id in ids:
        row = rows[request_id]
        assert row.status == Status.CLAIMED.value, (request_id, row)
        assert by_id.get(row.claimed_by or -1) == kept[request_id][0], (request_id, row)
        assert row.lease_expires_at is not None
        assert row.lease_expires_at > now
        assert crowd.alternates(trail[request_id]), (request_id, trail[request_id])
        claims = [a for a in trail[request_id] if a[0] == "reading.claim"]
        assert len(claims) == sum(1 for c in tally.claims if c[0] == request_id)


async def test_fifty_readers_claim_one_request_at_once_and_one_wins(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    asked_for = await asked(client, world, study, specialty="cardiology")
    people = await _crowd(client)
    tally = Tally()
    start = asyncio.Barrier(len(people))
    await asyncio.gather(
        *(crowd.claim_once(client, r, asked_for["id"], tally, start) for r in people)
    )
    assert tally.errors == []
    assert tally.statuses == {200: 1, 409: READERS - 1}
    ((request_id, winner),) = tally.claims
    assert request_id == asked_for["id"]
    (row,) = (await _rows(client, [request_id])).values()
    assert row.status == Status.CLAIMED.value
    assert row.claimed_by == next(r.user_id for r in people if r.username == winner)
    assert (await _trail(client, [request_id]))[request_id] == [("reading.claim", winner)]
    listed = await client.get(
        f"/api/v1/reading-requests/{request_id}", headers=world.auth("cardio")
    )
    assert (await listed.json())["claimed_by"] == winner


async def test_fifty_readers_empty_a_queue_each_request_claimed_exactly_once(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    ids = await _queue(client, world, study)
    people = await _crowd(client)
    tally = Tally()
    start = asyncio.Barrier(len(people))
    await asyncio.gather(*(crowd.next_until_empty(client, r, tally, start) for r in people))
    assert tally.statuses[204] == READERS
    claimed = Counter(request_id for request_id, _ in tally.claims)
    assert sorted(claimed) == ids
    assert {i: n for i, n in claimed.items() if n > 1} == {}, "claimed twice"
    assert tally.statuses[200] == QUEUE
    _assert_one_holder_each(ids, tally, await _rows(client, ids), await _trail(client, ids), people)


async def test_released_claims_are_claimed_again_and_each_ends_with_one_holder(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    ids = await _queue(client, world, study)
    people = await _crowd(client)
    tally = Tally()
    start = asyncio.Barrier(len(people))
    await asyncio.gather(
        *(
            crowd.next_until_empty(client, r, tally, start, release_every=2, releases=3)
            for r in people
        )
    )
    assert tally.statuses[204] == READERS
    assert tally.releases, "200 claims among 50 readers: someone claimed two and gave one back"
    assert set(tally.releases) <= set(tally.claims)
    again = {i for i, _ in tally.releases}
    assert Counter(i for i, _ in tally.claims)[min(again)] >= 2, "a release was not claimed again"
    trail = await _trail(client, ids)
    _assert_one_holder_each(ids, tally, await _rows(client, ids), trail, people)
    releases = Counter(i for i, _ in tally.releases)
    for request_id in ids:
        assert (
            sum(1 for a in trail[request_id] if a[0] == "reading.release") == releases[request_id]
        )


async def test_lapsed_leases_are_taken_over_never_by_two(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        ids = await crowd.queue(
            session,
            study_uid=study,
            requested_by=world.users["gp-a"],
            count=QUEUE,
            lapsed_holder=world.users["cardio"],
            lapsed_every=2,
        )
    lapsed = ids[::2]
    before = await _rows(client, lapsed)
    assert {r.claimed_by for r in before.values()} == {world.users["cardio"]}
    people = await _crowd(client)
    tally = Tally()
    grabbers = [(people[n % READERS], request_id) for n, request_id in enumerate(lapsed * 2)]
    start = asyncio.Barrier(len(people) + len(grabbers))
    await asyncio.gather(
        *(crowd.next_until_empty(client, r, tally, start) for r in people),
        *(crowd.claim_once(client, r, request_id, tally, start) for r, request_id in grabbers),
    )
    assert tally.statuses[204] == READERS
    claimers = tally.claimers()
    assert sorted(claimers) == ids
    assert {i: who for i, who in claimers.items() if len(who) != 1} == {}, "two claimers"
    rows = await _rows(client, ids)
    assert world.users["cardio"] not in {r.claimed_by for r in rows.values()}
    _assert_one_holder_each(ids, tally, rows, await _trail(client, ids), people)


# Two server processes on one PostgreSQL database ------------------------------------


@contextmanager
def _serving(settings: Settings, data_dir: Path, log: Path) -> Iterator[str]:
    """A real `doorstep serve` on the test's database; its base URL until the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    env.update(
        DOORSTEP_DATABASE_URL=settings.database_url,
        DOORSTEP_DATA_DIR=str(data_dir),
        DOORSTEP_SECRET_KEY=settings.secret_key.get_secret_value(),
        DOORSTEP_LOG_JSON="false",
        DOORSTEP_READING_WATCH_SECONDS="3600",
    )
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--dicom-port", "0"],
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} was not ready in {READY_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
async def two_servers(settings: Settings, tmp_path: Path) -> AsyncIterator[list[ClientSession]]:
    """Two `doorstep serve` processes on the test's PostgreSQL database, a session on each."""
    with ExitStack() as stack:
        logs = [tmp_path / f"serve-{n}.log" for n in range(2)]
        urls = [stack.enter_context(_serving(settings, tmp_path / "data", log)) for log in logs]
        for url, log in zip(urls, logs, strict=True):
            await asyncio.to_thread(_wait_ready, url, log)
        sessions = [ClientSession(base_url=url) for url in urls]
        try:
            yield sessions
        finally:
            for session in sessions:
                await session.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_server_processes_share_one_queue_without_double_claims(
    client: Client, world: World, two_servers: list[ClientSession]
) -> None:
    study = await stored_study(client, world)
    ids = await _queue(client, world, study)
    people = await _crowd(client)
    tally = Tally()
    start = asyncio.Barrier(len(people))
    await asyncio.gather(
        *(
            crowd.next_until_empty(two_servers[n % 2], r, tally, start, release_every=3, releases=1)
            for n, r in enumerate(people)
        )
    )
    assert tally.statuses[204] == READERS
    assert tally.releases
    trail = await _trail(client, ids)
    _assert_one_holder_each(ids, tally, await _rows(client, ids), trail, people)
    served = Counter(
        n % 2 for n, r in enumerate(people) for _, who in tally.claims if who == r.username
    )
    assert served[0] > 0, "the first process claimed"
    assert served[1] > 0, "the second process claimed"
