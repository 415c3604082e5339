"""Orphan blob collection: delete published blobs that no index row refers to.

A blob becomes an orphan when its process dies between publishing it and
committing the index row, or when the "replace" conflict policy points an
instance at new bytes. One blob may back several instances (the same bytes
stored by two organisations), so a blob is an orphan only when no Instance row
at all names its digest.

A store publishes its blobs before it commits their index rows, so a young
unreferenced blob may be one whose row is about to be committed: only blobs
whose modification time is older than the grace period are removed
(publishing bytes that already exist refreshes that time). References are
checked chunk by chunk, immediately before that chunk is removed, so the walk
works on any number of blobs with bounded memory and short transactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.archive.models import Instance
from server.archive.storage import BlobStorage
from server.db import utcnow

DEFAULT_GRACE = timedelta(hours=1)
CHUNK = 500
"""Digests per reference query (well below every backend's bound-parameter limit)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionReport:
    """What one collection run found and did."""

    examined: int = 0
    """Published blobs looked at."""
    removed: int = 0
    """Orphans deleted."""
    bytes_freed: int = 0
    """Their total size."""
    kept_recent: int = 0
    """Orphans kept because they are younger than the grace period."""

    def summary(self) -> str:
        """One line for an operator."""
        return (
            f"orphan blobs: examined {self.examined}, removed {self.removed} "
            f"({self.bytes_freed} bytes freed), kept {self.kept_recent} younger than the grace"
        )


async def collect_orphans(
    session_maker: async_sessionmaker[AsyncSession],
    storage: BlobStorage,
    *,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
) -> CollectionReport:
    """Remove the published blobs no instance refers to that are older than grace."""
    if grace < timedelta(0):
        raise ValueError("the grace period cannot be negative")
    cutoff = ((now or utcnow()) - grace).timestamp()
    started = time.monotonic()
    examined = removed = bytes_freed = kept_recent = 0
    blobs = storage.published()
    try:
        while chunk := await asyncio.to_thread(_next_chunk, blobs):
            examined += len(chunk)
            referenced = await _referenced(session_maker, [sha256 for sha256, _ in chunk])
            orphans = [(sha256, mtime) for sha256, mtime in chunk if sha256 not in referenced]
            expired = [sha256 for sha256, mtime in orphans if mtime < cutoff]
            kept_recent += len(orphans) - len(expired)
            if expired:
                result = await asyncio.to_thread(storage.remove, expired, modified_before=cutoff)
                removed += result.count
                bytes_freed += result.size
                log.debug("removed orphan blobs", extra={"sha256": expired})
    finally:
        await asyncio.to_thread(_close, blobs)
    report = CollectionReport(
        examined=examined, removed=removed, bytes_freed=bytes_freed, kept_recent=kept_recent
    )
    log.info(
        report.summary(),
        extra={
            "examined": examined,
            "removed": removed,
            "bytes_freed": bytes_freed,
            "kept_recent": kept_recent,
            "grace_seconds": grace.total_seconds(),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    return report


def _next_chunk(blobs: Iterator[tuple[str, float]]) -> list[tuple[str, float]]:
    """The next CHUNK published blobs (reads directories: call it in a thread)."""
    return list(islice(blobs, CHUNK))


def _close(blobs: Iterator[tuple[str, float]]) -> None:
    """Release the directory handles of an unfinished listing."""
    close = getattr(blobs, "close", None)
    if close is not None:
        close()


async def _referenced(
    session_maker: async_sessionmaker[AsyncSession], sha256s: Sequence[str]
) -> set[str]:
    """The digests among sha256s that at least one Instance row refers to."""
    async with session_maker() as session:
        rows = await session.scalars(
            select(Instance.sha256).where(Instance.sha256.in_(sha256s)).distinct()
        )
        return set(rows.all())
