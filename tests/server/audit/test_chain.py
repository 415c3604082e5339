"""The audit log: hash-chained, append-only, and verification finds edits and deletions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server import db
from server.audit import service as audit
from server.identity import Actor
from server.settings import Settings

SECRET = b"audit-test-secret"
ACTOR = Actor(user_id=7, username="gp-a", org_id=2, client_addr="10.0.0.1")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.create_sessionmaker(engine)


async def write(maker: async_sessionmaker[AsyncSession], count: int) -> None:
    for n in range(count):
        async with maker() as session, session.begin():
            await audit.Recorder(SECRET, ACTOR).record(
                session,
                action="patient.read",
                object_type="patient",
                object_id=n,
                details={"n": n},
            )


async def verify(
    maker: async_sessionmaker[AsyncSession], secret: bytes = SECRET
) -> audit.ChainReport:
    async with maker() as session:
        return await audit.verify(session=session, secret=secret)


async def unprotect(engine: AsyncEngine) -> None:
    """Remove the append-only triggers, as an attacker with database rights could."""
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            await connection.execute(text("DROP TRIGGER audit_events_append_only_update"))
            await connection.execute(text("DROP TRIGGER audit_events_append_only_delete"))


async def test_chain_of_fresh_events_is_intact(maker: async_sessionmaker[AsyncSession]) -> None:
    await write(maker, 5)
    report = await verify(maker)
    assert report.intact, report.problems
    assert report.events == 5


async def test_a_different_key_cannot_verify(maker: async_sessionmaker[AsyncSession]) -> None:
    await write(maker, 2)
    report = await verify(maker, secret=b"another key")
    assert not report.intact
    assert "event 1: content does not match its hash" in report.problems


async def test_rows_cannot_be_updated_or_deleted(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 1)
    for statement in ("UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement))
    assert (await verify(maker)).intact


async def test_an_edited_row_is_detected(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 4)
    await unprotect(engine)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE audit_events SET actor = 'someone-else' WHERE id = 2")
        )
    report = await verify(maker)
    assert report.problems == ("event 2: content does not match its hash",)


async def test_a_deleted_row_is_detected(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 4)
    await unprotect(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM audit_events WHERE id = 2"))
    report = await verify(maker)
    assert "events 2..2 are missing" in report.problems
    assert "event 3: link to the previous event is broken" in report.problems


async def test_a_removed_tail_is_detected(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 4)
    await unprotect(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM audit_events WHERE id = 4"))
    report = await verify(maker)
    assert report.problems == ("chain head names event 4 but the log ends at event 3",)


async def test_concurrent_writers_keep_one_chain(maker: async_sessionmaker[AsyncSession]) -> None:
    await asyncio.gather(*(write(maker, 5) for _ in range(8)))
    report = await verify(maker)
    assert report.intact, report.problems
    assert report.events == 40
