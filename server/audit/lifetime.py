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


async def _periodically(app: web.Application, interval: float) -> None:
    while True:
        try:
            await log_checkpoint(app)
        except Exception:
            log.exception("could not log an audit checkpoint; trying again at the next interval")
        await asyncio.sleep(interval)


async def checkpoints(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: a checkpoint at start-up, then every audit_checkpoint_minutes."""
    interval = app[keys.SETTINGS].audit_checkpoint_minutes * 60.0
    task = asyncio.create_task(_periodically(app, interval), name="doorstep-audit-checkpoints")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
