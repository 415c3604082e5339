"""The archive of a running application: one object that stores, and holds what storing needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.archive import storing
from server.archive.staging import ConflictPolicy, Items, StoreResult
from server.archive.storage import BlobStorage
from server.audit.service import Recorder
from server.db import WriteGroup
from server.errors import TooManyRequests
from server.settings import Settings

UPLOAD_RETRY_AFTER = 10
"""Seconds a user at their upload limit is asked to wait (Retry-After)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Archive:
    """Where instances are stored and indexed: the database, the blobs and the limits.

    Built once in the archive's lifetime (`app[keys.ARCHIVE]`); every route that stores
    (STOW-RS, C-STORE, browser uploads, reports stored back) calls `store`.
    """

    session_maker: async_sessionmaker[AsyncSession]
    write_group: WriteGroup
    storage: BlobStorage
    conflict: ConflictPolicy = "reject"
    max_instance_bytes: int | None = None
    max_inflated_bytes: int
    max_uploads_per_user: int = 3
    _uploads: dict[int, int] = field(default_factory=dict)

    @classmethod
    def configured(
        cls,
        settings: Settings,
        *,
        session_maker: async_sessionmaker[AsyncSession],
        write_group: WriteGroup,
        storage: BlobStorage,
    ) -> Archive:
        """The archive with the conflict policy and size limits of these settings."""
        return cls(
            session_maker=session_maker,
            write_group=write_group,
            storage=storage,
            conflict=settings.archive_conflict,
            max_instance_bytes=settings.max_instance_bytes,
            max_inflated_bytes=settings.max_inflated_bytes,
            max_uploads_per_user=settings.max_uploads_per_user,
        )

    @asynccontextmanager
    async def upload_slot(self, user_id: int) -> AsyncIterator[None]:
        """One of a user's concurrent uploads (STOW-RS, zip, photo) in this process.

        A user with max_uploads_per_user uploads under way is asked to wait (429), so
        that one account cannot fill the server's memory, disk bandwidth and workers.
        """
        if self._uploads.get(user_id, 0) >= self.max_uploads_per_user:
            raise TooManyRequests(
                f"You already have {self.max_uploads_per_user} uploads in progress; "
                "send the next when one has finished.",
                retry_after=UPLOAD_RETRY_AFTER,
            )
        self._uploads[user_id] = self._uploads.get(user_id, 0) + 1
        try:
            yield
        finally:
            left = self._uploads.pop(user_id) - 1
            if left:
                self._uploads[user_id] = left

    async def store(
        self,
        *,
        audit: Recorder,
        org_id: int,
        items: Items,
        source: str,
        study_uid: str | None = None,
    ) -> list[StoreResult]:
        """Validate, durably store and index Part 10 instances for org_id; one result per item.

        With study_uid, instances of any other study are refused (STOW-RS to a study URL).
        """
        return await storing.store_instances(
            self, audit=audit, org_id=org_id, items=items, source=source, study_uid=study_uid
        )
