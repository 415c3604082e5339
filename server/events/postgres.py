"""The PostgreSQL event bus: LISTEN/NOTIFY so that several server processes share events."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from server.events.bus import EventBus, decode_payload, encode_payload

PG_CHANNEL = "doorstep_events"

log = logging.getLogger(__name__)


def to_asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy URL (`postgresql+asyncpg://user@host:5432/db`) into an asyncpg DSN."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url, count=1)


class PostgresEventBus(EventBus):
    """Event bus across processes: NOTIFY to publish, one LISTEN connection fanned out locally."""

    def __init__(
        self,
        dsn: str,
        *,
        health_interval: float = 15.0,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self._dsn = to_asyncpg_dsn(dsn)
        self._health_interval = health_interval
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._connect_timeout = connect_timeout
        self._listener: Any = None  # asyncpg.Connection running LISTEN
        self._publisher: Any = None  # asyncpg.Connection for NOTIFY, guarded by the lock
        self._publish_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def listener_pid(self) -> int | None:
        """Server process id of the listening connection, None while disconnected."""
        conn = self._listener
        return None if conn is None or conn.is_closed() else int(conn.get_server_pid())

    async def start(self) -> None:
        """Connect and LISTEN (failing if PostgreSQL is unreachable), then keep listening."""
        self._check_open()
        if self._supervisor is not None:
            raise RuntimeError("the event bus is already started")
        await self._listen()
        self._supervisor = asyncio.create_task(self._supervise(), name="doorstep-event-bus")

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        """NOTIFY every process listening on this database; one connection keeps call order."""
        self._check_open()
        payload = encode_payload(channel, event)
        async with self._publish_lock:
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await self._connect()
            await self._publisher.execute("SELECT pg_notify($1, $2)", PG_CHANNEL, payload)

    async def close(self) -> None:
        """Stop listening, close both connections and end every subscription."""
        await super().close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])
            self._supervisor = None
        await self._drop_listener()
        async with self._publish_lock:
            conn, self._publisher = self._publisher, None
            await _close_quietly(conn)

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": "doorstep-events"},
        )

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(PG_CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_termination)
        self._lost.clear()
        self._listener = conn

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            conn.remove_termination_listener(self._on_termination)
            await _close_quietly(conn)

    async def _supervise(self) -> None:
        """Watch the listening connection; reconnect with exponential backoff when it drops."""
        delay = self._reconnect_delay
        while True:
            if self._listener is not None and await self._still_listening(self._listener):
                continue
            await self._drop_listener()
            try:
                await self._listen()
            except Exception as exc:
                log.warning(
                    "event bus: cannot reconnect to PostgreSQL (%s: %s); retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
            else:
                log.warning("event bus: listening again after reconnecting to PostgreSQL")
                delay = self._reconnect_delay

    async def _still_listening(self, conn: Any) -> bool:
        """Wait one health interval; False once the connection is lost or fails a ping."""
        try:
            await asyncio.wait_for(self._lost.wait(), self._health_interval)
        except TimeoutError:
            try:
                await conn.execute("SELECT 1", timeout=self._health_interval)
            except Exception as exc:
                log.warning("event bus: listener failed a health check (%s)", type(exc).__name__)
                return False
            return True
        log.warning("event bus: lost the PostgreSQL listener connection; reconnecting")
        return False

    def _on_termination(self, conn: Any) -> None:
        if conn is self._listener:
            self._lost.set()

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        try:
            delivery = decode_payload(payload)
        except ValueError:
            log.warning("event bus: ignoring a malformed notification on %s", PG_CHANNEL)
            return
        self._fan_out(delivery)


async def _close_quietly(conn: Any) -> None:
    """Close an asyncpg connection, aborting it if a graceful close fails."""
    if conn is None:
        return
    try:
        await conn.close(timeout=5)
    except Exception:
        conn.terminate()
