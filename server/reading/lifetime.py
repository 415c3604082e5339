"""The SLA watch: marks overdue requests (escalating each once) and lapses abandoned claims.

Every step is a conditional UPDATE … RETURNING, so several server processes may run
the watch at once: each row changes, and is announced, by exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.db import transaction
from server.identity import Actor
from server.reading import service

log = logging.getLogger(__name__)
WATCH_ACTOR = Actor(user_id=None, username="sla-watch", org_id=None)


async def watch_once(app: web.Application) -> tuple[list[int], list[int]]:
    """One pass: (overdue request ids escalated now, claim ids lapsed now)."""
    audit = app[keys.AUDIT].recorder(WATCH_ACTOR)
    bus = app[keys.EVENT_BUS]
    async with transaction(app[keys.SESSIONMAKER]) as session:
        overdue = await service.escalate_overdue(session=session, audit=audit, bus=bus)
    async with transaction(app[keys.SESSIONMAKER]) as session:
        lapsed = await service.lapse_claims(session=session, audit=audit, bus=bus)
    return overdue, lapsed


async def _periodically(app: web.Application, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            overdue, lapsed = await watch_once(app)
        except Exception:
            log.exception("the SLA watch failed; trying again at the next interval")
            continue
        if overdue or lapsed:
            log.info("SLA watch: %d overdue, %d claims lapsed", len(overdue), len(lapsed))


async def sla_watch(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the SLA watch every reading_watch_seconds."""
    interval = app[keys.SETTINGS].reading_watch_seconds
    task = asyncio.create_task(_periodically(app, interval), name="doorstep-sla-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
