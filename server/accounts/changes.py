"""Announce account changes to every server process, and keep each one's principal cache in step.

A token revoked or a user disabled must stop working at once in every process:
the process that made the change drops the user's cached grants itself and
tells the others through the event bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from server import keys
from server.accounts.principal_cache import PrincipalCache
from server.events.bus import EventBus

CHANNEL = "accounts"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """Where a committed account change is announced: this process's cache and the bus."""

    cache: PrincipalCache
    bus: EventBus

    async def user_changed(self, user_id: int) -> None:
        """After a commit that revokes or disables: drop the user's grants in every process."""
        self.cache.drop_user(user_id)
        try:
            await self.bus.publish(CHANNEL, {"type": "user.changed", "user_id": user_id})
        except Exception:  # the change is committed; other processes' entries expire within the TTL
            log.warning(
                "could not tell other processes that user %s changed", user_id, exc_info=True
            )


async def _follow(bus: EventBus, cache: PrincipalCache) -> None:
    async with bus.subscribe(CHANNEL) as subscription:
        async for delivery in subscription:
            user_id = delivery.event.get("user_id")
            if isinstance(user_id, int):
                cache.drop_user(user_id)


async def principal_cache(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the process's cache, kept in step with other processes through the bus."""
    cache = PrincipalCache()
    app[keys.PRINCIPAL_CACHE] = cache
    app[keys.ACCOUNT_CHANGES] = AccountChanges(cache, app[keys.EVENT_BUS])
    follower = asyncio.create_task(_follow(app[keys.EVENT_BUS], cache))
    yield
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
