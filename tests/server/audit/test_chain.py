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
from server.errors import InvalidInput
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


async def _cut_tail(engine: AsyncEngine, after: int, head: tuple[int, str, str] | None) -> None:
    """Delete the events after `after` and rewind the head, as an attacker with DB rights."""
    await unprotect(engine)
    async with engine.begin() as connection:
        if head is None:  # rewind to the last kept event, without the key for its MAC
            row = (
                await connection.execute(
                    text("SELECT id, hash FROM audit_events WHERE id = :id"), {"id": after}
                )
            ).one()
            head = (row.id, row.hash, "0" * 64)
        await connection.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": after})
        await connection.execute(
            text("UPDATE audit_chain_head SET last_id = :id, last_hash = :hash, mac = :mac"),
            {"id": head[0], "hash": head[1], "mac": head[2]},
        )


async def _head(engine: AsyncEngine) -> tuple[int, str, str]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT last_id, last_hash, mac FROM audit_chain_head"))
        ).one()
        return int(row.last_id), str(row.last_hash), str(row.mac)


async def test_a_tail_cut_with_the_head_rewound_is_detected_by_the_head_mac(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 5)
    await _cut_tail(engine, 3, head=None)
    report = await verify(maker)
    assert report.problems == ("chain head does not match its MAC: it was rewound or edited",)


async def test_a_replayed_head_passes_alone_but_not_against_a_later_checkpoint(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    await write(maker, 3)
    old_head = await _head(engine)  # an attacker who kept a copy of the head row at event 3
    await write(maker, 2)
    async with maker() as session:
        anchor = await audit.checkpoint(session=session, secret=SECRET)
    assert (anchor.count, anchor.head_id) == (5, 5)
    await _cut_tail(engine, 3, head=old_head)
    assert (await verify(maker)).intact  # the head's MAC alone cannot see a replay
    async with maker() as session:
        report = await audit.verify(session=session, secret=SECRET, checkpoints=[anchor])
    assert report.problems == (
        f"the log ends at event 3, but the checkpoint of {anchor.at.isoformat()} "
        "names event 5: events were cut off",
    )


async def test_checkpoints_are_signed_and_checked_against_the_events(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    await write(maker, 2)
    async with maker() as session:
        anchor = await audit.checkpoint(session=session, secret=SECRET)
    line = anchor.to_json()
    assert audit.Checkpoint.from_json(line, SECRET) == anchor
    forged = line.replace('"head_id":2', '"head_id":1')
    with pytest.raises(InvalidInput, match="MAC does not match"):
        audit.Checkpoint.from_json(forged, SECRET)
    with pytest.raises(InvalidInput, match="MAC does not match"):
        audit.Checkpoint.from_json(line, b"another key")
    with pytest.raises(InvalidInput, match="Not an audit checkpoint"):
        audit.Checkpoint.from_json('{"kind": "something else"}', SECRET)
    other = audit.Checkpoint.signed(SECRET, count=2, head_id=2, head_hash="f" * 64, at=anchor.at)
    async with maker() as session:
        report = await audit.verify(session=session, secret=SECRET, checkpoints=[anchor, other])
    assert report.problems == (f"event 2 differs from the checkpoint of {anchor.at.isoformat()}",)
