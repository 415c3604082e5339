"""Keep every process's principal cache in step when a token is revoked or a user changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.accounts.principal_cache import PrincipalCache
from server.events.bus import EventBus

CHANNEL = "accounts"
log = logging.getLogger(__name__)


async def user_changed(request: web.Request, user_id: int) -> None:
    """After a commit that revokes or disables: drop the user's grants in every server process."""
    request.app[keys.PRINCIPAL_CACHE].drop_user(user_id)
    try:
        await request.app[keys.EVENT_BUS].publish(
            CHANNEL, {"type": "user.changed", "user_id": user_id}
        )
    except Exception:  # the change is committed; other processes' entries expire within the TTL
        log.warning("could not tell other processes that user %s changed", user_id, exc_info=True)


async def _follow(bus: EventBus, cache: PrincipalCache) -> None:
    async with bus.subscribe(CHANNEL) as subscription:
        async for delivery in subscription:
            user_id = delivery.event.get("user_id")
            if isinstance(user_id, int):
                cache.drop_user(user_id)


async def principal_cache_ctx(app: web.Application) -> AsyncIterator[None]:
    """The process's cache, kept in step with other processes through the event bus."""
    cache = PrincipalCache()
    app[keys.PRINCIPAL_CACHE] = cache
    follower = asyncio.create_task(_follow(app[keys.EVENT_BUS], cache))
    yield
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
