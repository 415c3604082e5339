"""The kiosk's background work: the follow-up reminder watch.

Every kiosk_reminder_seconds it marks the follow-ups starting within 10 minutes as
reminded and tells each one's specialist live (`follow_up.reminder` on their user
channel). Several server processes may run it at once: one conditional UPDATE marks
each reminder, so exactly one of them sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.db import transaction, utcnow
from server.kiosk import followups

log = logging.getLogger(__name__)


async def remind_once(app: web.Application) -> list[int]:
    """One pass: the follow-ups whose specialist this process reminded now."""
    async with transaction(app[keys.SESSIONMAKER]) as session:
        return await followups.remind(session=session, bus=app[keys.EVENT_BUS], now=utcnow())


async def _periodically(app: web.Application, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            sent = await remind_once(app)
        except Exception:
            log.exception("the follow-up reminder watch failed; trying again at the next interval")
            continue
        if sent:
            log.info("follow-up reminders: %d sent", len(sent))


async def reminder_watch(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the follow-up reminder watch every kiosk_reminder_seconds."""
    interval = app[keys.SETTINGS].kiosk_reminder_seconds
    task = asyncio.create_task(_periodically(app, interval), name="doorstep-kiosk-reminders")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
