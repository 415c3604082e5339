"""Declarative base, engine and session factory, and the Alembic upgrade."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from server.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """Engine for the configured database, with SQLite set to WAL and foreign keys on."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(settings.database_url, pool_size=5, max_overflow=5)
        pragmas = functools.partial(_sqlite_pragmas, settings.sqlite_busy_timeout_ms)
        event.listen(engine.sync_engine, "connect", pragmas)
        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=10, pool_pre_ping=True
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]
AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "doorstep.after_commit"
_OWN_TRANSACTION = "doorstep.own_transaction"
_SESSION_MAKER = "doorstep.session_maker"

log = logging.getLogger(__name__)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run callback once the transaction of session has committed (within `transaction`).

    Services publish their "changed" events this way, so that nobody hears of a change
    that was rolled back.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def in_own_transaction(session: AsyncSession, work: Work[None]) -> None:
    """Run work in a transaction of its own once session's has ended, committed or not.

    For writes that must not make a read a write transaction, nor be lost with it: the
    audit events of reads and of refused attempts (which a 404 raised afterwards would
    otherwise roll back). With the transaction's WriteGroup they share a commit with
    concurrent writers. The session must come from `transaction()`.
    """
    if _SESSION_MAKER not in session.info:
        raise RuntimeError("in_own_transaction needs a session opened by db.transaction()")
    session.info.setdefault(_OWN_TRANSACTION, []).append(work)


class Transaction:
    """`async with transaction(maker) as session:` a session in one transaction.

    On success the transaction commits, then the after-commit callbacks run in order;
    a failing callback is logged, since what it announces has already happened. Work
    given to `in_own_transaction` runs afterwards in any case, each in a new transaction.
    """

    def __init__(
        self,
        session_maker: async_sessionmaker[AsyncSession],
        write_group: WriteGroup | None = None,
    ) -> None:
        self._session_maker = session_maker
        self._write_group = write_group
        self._session = session_maker()
        self._session.info[_SESSION_MAKER] = session_maker

    async def __aenter__(self) -> AsyncSession:
        await self._session.__aenter__()
        await self._session.begin()
        return self._session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self._session
        try:
            if error is None:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
        callbacks: list[AfterCommit] = session.info.pop(_AFTER_COMMIT, [])
        own: list[Work[None]] = session.info.pop(_OWN_TRANSACTION, [])
        for work in own:
            try:
                if self._write_group is not None:
                    await self._write_group.run(work)
                else:
                    async with transaction(self._session_maker) as alone:
                        await work(alone)
            except Exception:
                log.exception("work of its own transaction failed")
        if error is None:
            for callback in callbacks:
                try:
                    await callback()
                except Exception:
                    log.exception("an after-commit callback failed")


def transaction(
    session_maker: async_sessionmaker[AsyncSession], write_group: WriteGroup | None = None
) -> Transaction:
    """A session in one transaction that commits on success and then runs after-commit work.

    Work of its own transaction (`in_own_transaction`) goes through write_group if given.
    """
    return Transaction(session_maker, write_group)


class WriteGroup:
    """Concurrent callers share write transactions (one WriteGroup per application).

    Writes that arrive while one transaction runs are committed together in the next,
    so concurrent callers pay for one commit (and on SQLite one turn of its single
    writer) instead of one each; each caller hears back only after the commit that
    holds its work. When a shared transaction fails, each work in it is run again
    alone, so that one caller's failure is not another's: work must not keep state
    from a previous run.
    """

    def __init__(self, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self.session_maker = session_maker
        self._waiting: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, work: Work[T]) -> T:
        """Run work in the next shared write transaction; its value once that has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name="doorstep-write-group")
        return await asyncio.shield(future)  # a caller that goes away leaves the work to commit

    async def close(self) -> None:
        """Wait for the writes under way (application shutdown)."""
        if self._runner is not None:
            await asyncio.shield(self._runner)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._commit(batch)
                except BaseException as error:  # cancelled: nobody may wait forever
                    for _, future in batch:
                        _settle(future, error=error)
                    raise
        finally:
            self._runner = None

    async def _commit(self, batch: list[tuple[Work[Any], asyncio.Future[Any]]]) -> None:
        try:
            async with self.session_maker() as session, session.begin():
                values = [await work(session) for work, _ in batch]
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for work, future in batch:  # one caller's failure must not be another's
                try:
                    async with self.session_maker() as session, session.begin():
                        value = await work(session)
                except Exception as alone:
                    _settle(future, error=alone)
                else:
                    _settle(future, value=value)
            return
        for (_, future), value in zip(batch, values, strict=True):
            _settle(future, value=value)


def _settle(
    future: asyncio.Future[Any], *, value: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller went away; the work is committed all the same
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()  # shutdown: a cancelled future is not "an exception never retrieved"
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    from server.package_data import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command

    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema's migration revision, None when never migrated."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
