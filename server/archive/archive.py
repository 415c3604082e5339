"""The archive of a running application: one object that stores, and holds what storing needs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.archive import storing
from server.archive.storage import BlobStorage
from server.archive.storing import ConflictPolicy, Items, StoreResult
from server.audit.service import Recorder
from server.db import WriteGroup
from server.settings import Settings


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
        )

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
