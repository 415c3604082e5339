"""The blob storage of a running application: started (with crash recovery) and closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.archive.storage import LocalBlobStorage

log = logging.getLogger(__name__)


async def blob_storage(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: local blobs under <data dir>/blobs, stale staged files removed first."""
    storage = LocalBlobStorage(app[keys.SETTINGS].data_dir / "blobs")
    removed = await asyncio.to_thread(storage.start)
    if removed:
        log.warning("removed %d staged files left by an interrupted process", removed)
    app[keys.BLOB_STORAGE] = storage
    yield
    await asyncio.to_thread(storage.close)
