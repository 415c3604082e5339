"""Bearer-token principals resolved recently, per process, so most requests skip the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from server.db import utcnow
from server.identity import Principal

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a live token grants: its principal, and until when."""

    principal: Principal
    expires_at: datetime | None


class PrincipalCache:
    """Token hash -> grant for at most `ttl` seconds; one database load per key at a time."""

    def __init__(self, *, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Grant]] = {}
        self._loading: dict[str, asyncio.Future[Grant]] = {}

    async def get(self, token_hash: str, load: Callable[[], Awaitable[Grant]]) -> Principal:
        """The cached principal, or the result of `load` shared by every concurrent caller."""
        now = time.monotonic()
        cached = self._entries.get(token_hash)
        if cached is not None and cached[0] > now and not _expired(cached[1]):
            return cached[1].principal
        pending = self._loading.get(token_hash)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._loading[token_hash] = pending
            pending.add_done_callback(lambda _: self._loading.pop(token_hash, None))
            pending.add_done_callback(lambda done: self._keep(token_hash, done))
        grant = await asyncio.shield(pending)
        return grant.principal

    def _keep(self, token_hash: str, done: asyncio.Future[Grant]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self._ttl, done.result())

    def drop_user(self, user_id: int) -> None:
        """Forget every grant of a user (token revoked, account disabled or changed)."""
        for key in [k for k, (_, g) in self._entries.items() if g.principal.user_id == user_id]:
            del self._entries[key]


def _expired(grant: Grant) -> bool:
    return grant.expires_at is not None and grant.expires_at <= utcnow()
