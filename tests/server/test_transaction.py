"""db.transaction: commit or roll back, then after-commit work, only after a commit."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import db
from server.audit.models import AuditEvent
from server.audit.service import Recorder
from server.identity import Actor
from server.settings import Settings

ACTOR = Actor(user_id=None, username="test", org_id=None)


async def _events(maker: async_sessionmaker[AsyncSession]) -> list[str]:
    async with maker() as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def test_after_commit_work_runs_in_order_after_the_commit(settings: Settings) -> None:
    engine = db.create_engine(settings)
    maker = db.create_sessionmaker(engine)
    ran: list[tuple[str, list[str]]] = []
    try:
        async with db.transaction(maker) as session:
            await Recorder(b"k", ACTOR).record(session, action="test.first")

            async def first() -> None:  # sees the committed row from another session
                ran.append(("first", await _events(maker)))

            async def second() -> None:
                ran.append(("second", []))

            db.after_commit(session, first)
            db.after_commit(session, second)
            assert ran == []
        assert ran == [("first", ["test.first"]), ("second", [])]
    finally:
        await engine.dispose()


async def test_a_rolled_back_transaction_runs_no_after_commit_work(settings: Settings) -> None:
    engine = db.create_engine(settings)
    maker = db.create_sessionmaker(engine)
    ran: list[str] = []

    async def announce() -> None:
        ran.append("announced")

    try:

        async def refused_change() -> None:
            async with db.transaction(maker) as session:
                await Recorder(b"k", ACTOR).record(session, action="test.rolled_back")
                db.after_commit(session, announce)
                raise RuntimeError("refused")

        with pytest.raises(RuntimeError, match="refused"):
            await refused_change()
        assert ran == []
        assert "test.rolled_back" not in await _events(maker)
    finally:
        await engine.dispose()


async def test_a_failing_after_commit_callback_is_logged_and_the_commit_stands(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    engine = db.create_engine(settings)
    maker = db.create_sessionmaker(engine)
    ran: list[str] = []

    async def broken() -> None:
        raise OSError("bus down")

    async def later() -> None:
        ran.append("later")

    try:
        with caplog.at_level(logging.ERROR, logger="server.db"):
            async with db.transaction(maker) as session:
                await Recorder(b"k", ACTOR).record(session, action="test.kept")
                db.after_commit(session, broken)
                db.after_commit(session, later)
        assert "test.kept" in await _events(maker)
        assert ran == ["later"]
        assert "an after-commit callback failed" in caplog.text
    finally:
        await engine.dispose()
