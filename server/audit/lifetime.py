"""The audit log of a running application: a signed checkpoint logged periodically.

An external log store (journald, a SIEM) that keeps these lines holds anchors
that `doorstep audit verify --checkpoint FILE` checks the log against.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.audit import service
from server.db import transaction

log = logging.getLogger(__name__)


async def log_checkpoint(app: web.Application) -> None:
    """Log one signed checkpoint of the audit log now."""
    async with transaction(app[keys.SESSIONMAKER]) as session:
        found = await service.checkpoint(session=session, secret=app[keys.AUDIT].secret)
    log.info("audit checkpoint %s", found.to_json(), extra={"audit_checkpoint": found.to_json()})


async def _periodically(app: web.Application, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await log_checkpoint(app)
        except Exception:
            log.exception("could not log an audit checkpoint; trying again at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def checkpoints(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: a checkpoint at start-up, then every audit_checkpoint_minutes.

    On shutdown a checkpoint in progress (the start-up one, when the server is stopped at
    once) is let finish rather than cancelled inside its transaction, before the engine goes.
    """
    interval = app[keys.SETTINGS].audit_checkpoint_minutes * 60.0
    stop = asyncio.Event()
    task = asyncio.create_task(
        _periodically(app, interval, stop), name="doorstep-audit-checkpoints"
    )
    yield
    stop.set()
    await task
