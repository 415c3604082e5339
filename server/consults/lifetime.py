"""The offer watch: moves consult offers on when they lapse, and ends requests nobody took.

Every step is a conditional UPDATE … RETURNING, so several server processes may run
the watch at once: each lapse is moved on, audited and announced by exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.consults import service
from server.db import transaction
from server.identity import Actor

log = logging.getLogger(__name__)
WATCH_ACTOR = Actor(user_id=None, username="consult-watch", org_id=None)


async def watch_once(app: web.Application) -> list[int]:
    """One pass: the consults whose offer lapsed now (each moved to the next or ended)."""
    audit = app[keys.AUDIT].recorder(WATCH_ACTOR)
    policy = service.Policy.of(app[keys.SETTINGS])
    async with transaction(app[keys.SESSIONMAKER]) as session:
        return await service.settle(
            session=session, audit=audit, bus=app[keys.EVENT_BUS], policy=policy
        )


async def _periodically(app: web.Application, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            lapsed = await watch_once(app)
        except Exception:
            log.exception("the consult offer watch failed; trying again at the next interval")
            continue
        if lapsed:
            log.info("consult offer watch: %d offers lapsed", len(lapsed))


async def offer_watch(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the offer watch every consult_watch_seconds."""
    interval = app[keys.SETTINGS].consult_watch_seconds
    task = asyncio.create_task(_periodically(app, interval), name="doorstep-consult-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
