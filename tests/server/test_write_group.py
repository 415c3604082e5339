"""WriteGroup: concurrent callers share commits, yet one caller's failure is not another's."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import db
from server.accounts.models import Organisation
from server.identity import OrgKind
from server.settings import Settings


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(settings)
    yield db.create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def writes(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[db.WriteGroup]:
    group = db.WriteGroup(sessions)
    yield group
    await group.close()


def add(name: str) -> Callable[[AsyncSession], Awaitable[str]]:
    async def work(session: AsyncSession) -> str:
        session.add(Organisation(name=name, kind=OrgKind.CLINIC))
        await session.flush()
        return name

    return work


async def names(sessions: async_sessionmaker[AsyncSession], prefix: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Organisation.name).where(Organisation.name.like(f"{prefix}%"))
        )
        return sorted(rows.all())


async def test_concurrent_writes_share_commits(
    sessions: async_sessionmaker[AsyncSession], writes: db.WriteGroup
) -> None:
    commits = 0

    def count(_connection: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(sessions.kw["bind"].sync_engine, "commit", count)
    wanted = [f"grouped {i:02d}" for i in range(20)]
    answers = await asyncio.gather(*(writes.run(add(n)) for n in wanted))
    assert answers == wanted
    assert await names(sessions, "grouped ") == wanted
    assert 1 <= commits < len(wanted)


async def test_a_failing_write_fails_alone(
    sessions: async_sessionmaker[AsyncSession], writes: db.WriteGroup
) -> None:
    async def broken(session: AsyncSession) -> str:
        raise RuntimeError("this caller's own failure")

    duplicate = add("grouped twin")
    results = await asyncio.gather(
        writes.run(add("grouped first")),
        writes.run(add("grouped twin")),
        writes.run(broken),
        writes.run(duplicate),  # violates the unique name: fails alone
        writes.run(add("grouped last")),
        return_exceptions=True,
    )
    assert results[:2] == ["grouped first", "grouped twin"]
    assert isinstance(results[2], RuntimeError)
    assert isinstance(results[3], IntegrityError)
    assert results[4] == "grouped last"
    assert await names(sessions, "grouped ") == ["grouped first", "grouped last", "grouped twin"]


async def test_a_caller_that_goes_away_still_gets_its_write_committed(
    sessions: async_sessionmaker[AsyncSession], writes: db.WriteGroup
) -> None:
    started = asyncio.Event()

    async def slow(session: AsyncSession) -> str:
        started.set()
        await asyncio.sleep(0.05)
        return await add("grouped abandoned")(session)

    caller = asyncio.create_task(writes.run(slow))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await writes.run(add("grouped after")) == "grouped after"
    assert await names(sessions, "grouped ") == ["grouped abandoned", "grouped after"]


async def test_a_shutdown_that_cancels_the_writes_leaves_no_unretrieved_error(
    writes: db.WriteGroup,
) -> None:
    """Callers gone and the writer cancelled (the server stopping with calls open): their
    futures are cancelled, not left holding an error that asyncio logs one by one."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    started = asyncio.Event()

    async def slow(session: AsyncSession) -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    callers = [asyncio.create_task(writes.run(slow)) for _ in range(3)]
    await started.wait()
    for caller in callers:
        caller.cancel()
    runner = writes._runner
    assert runner is not None
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await asyncio.gather(*callers, return_exceptions=True)
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [c.get("message") for c in reported] == []
