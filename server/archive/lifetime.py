"""The blob storage of a running application: started (with crash recovery) and closed.

While the application runs, a background task collects orphan blobs shortly
after startup and then once per COLLECTION_INTERVAL; a failed run is logged and
retried at the next interval. Startup never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import keys
from server.archive.archive import Archive
from server.archive.collection import DEFAULT_GRACE, collect_orphans
from server.archive.storage import BlobStorage, LocalBlobStorage

COLLECTION_DELAY = 60.0
"""Seconds between startup and the first orphan collection."""
COLLECTION_INTERVAL = 24 * 60 * 60.0
"""Seconds between orphan collections."""

log = logging.getLogger(__name__)


def blob_root(data_dir: Path) -> Path:
    """Where the local blobs of a data directory live."""
    return data_dir / "blobs"


async def _collect_periodically(
    session_maker: async_sessionmaker[AsyncSession], storage: BlobStorage
) -> None:
    """Collect orphan blobs after COLLECTION_DELAY, then every COLLECTION_INTERVAL, forever."""
    await asyncio.sleep(COLLECTION_DELAY)
    while True:
        try:
            await collect_orphans(session_maker, storage, grace=DEFAULT_GRACE)
        except Exception:
            log.exception("orphan blob collection failed; retrying at the next interval")
        await asyncio.sleep(COLLECTION_INTERVAL)


async def archive(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the Archive, on local blobs under <data dir>/blobs.

    Staged files left by an interrupted process are removed first.
    """
    settings = app[keys.SETTINGS]
    storage = LocalBlobStorage(blob_root(settings.data_dir))
    removed = await asyncio.to_thread(storage.start)
    if removed:
        log.warning("removed %d staged files left by an interrupted process", removed)
    app[keys.ARCHIVE] = Archive.configured(
        settings,
        session_maker=app[keys.SESSIONMAKER],
        write_group=app[keys.WRITE_GROUP],
        storage=storage,
    )
    collector = asyncio.create_task(
        _collect_periodically(app[keys.SESSIONMAKER], storage), name="doorstep-blob-collection"
    )
    yield
    collector.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await collector
    await asyncio.to_thread(storage.close)
