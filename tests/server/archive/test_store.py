"""Archive service: idempotent duplicates, conflict policies, org scoping, races, failures."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from aiohttp.test_utils import TestClient, TestServer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from server import db, keys
from server.app import create_app
from server.archive import service as archive
from server.archive.models import Instance, Study
from server.archive.storage import BlobStorage, StagedBlob
from server.audit.models import AuditEvent
from server.settings import Settings
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.support import Client, World, store

ORIGINAL = part10(dataset())
CHANGED = part10(dataset(replace={0x00100010: b"Changed^Name"}))


async def _store(
    client: Client,
    org_id: int,
    items: Sequence[bytes],
    *,
    conflict: archive.ConflictPolicy = "reject",
    storage: BlobStorage | None = None,
) -> list[archive.StoreResult]:
    return await store(client.app, org_id, items, conflict=conflict, storage=storage)


async def _rows(client: Client) -> list[tuple[int, str, str]]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(Study.org_id, Instance.sop_instance_uid, Instance.sha256)
            .join(Study, Study.id == Instance.study_id)
            .order_by(Instance.id)
        )
        return [(org, uid, sha) for org, uid, sha in rows]


async def _events(client: Client, action: str) -> list[AuditEvent]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_duplicates_are_idempotent_and_conflicts_rejected(
    client: Client, world: World
) -> None:
    clinic = world.orgs["clinic-a"]
    (first,) = await _store(client, clinic, [ORIGINAL])
    (again,) = await _store(client, clinic, [ORIGINAL])
    (conflict,) = await _store(client, clinic, [CHANGED])
    assert [first.outcome, again.outcome, conflict.outcome] == ["stored", "duplicate", "conflict"]
    assert (first.ok, again.ok, conflict.ok) == (True, True, False)
    assert await _rows(client) == [(clinic, first.sop_instance_uid, _sha(ORIGINAL))]
    (event,) = await _events(client, "dicom.conflict")
    assert (event.outcome, event.object_id) == ("failure", first.sop_instance_uid)


async def test_replace_policy_keeps_the_newest(client: Client, world: World) -> None:
    clinic = world.orgs["clinic-a"]
    moved = part10(dataset(replace={0x0020000D: b"1.2.826.0.1.3680043.8.498.99"}))
    (first,) = await _store(client, clinic, [ORIGINAL])
    results = await _store(client, clinic, [CHANGED, moved], conflict="replace")
    assert [r.outcome for r in results] == ["replaced", "replaced"]
    assert await _rows(client) == [(clinic, results[0].sop_instance_uid, _sha(moved))]
    async with client.app[keys.SESSIONMAKER]() as session:
        studies = (await session.scalars(select(Study.study_uid))).all()
    assert studies == ["1.2.826.0.1.3680043.8.498.99"]  # the emptied study is gone
    events = await _events(client, "dicom.conflict")
    assert [(e.outcome, e.object_id) for e in events] == [("success", first.sop_instance_uid)] * 2


async def test_the_same_uids_in_two_organisations_never_merge(client: Client, world: World) -> None:
    a, b = world.orgs["clinic-a"], world.orgs["clinic-b"]
    await _store(client, a, [ORIGINAL])
    (theirs,) = await _store(client, b, [CHANGED])  # same UIDs, other bytes: no conflict
    assert theirs.outcome == "stored"
    rows = await _rows(client)
    assert [(org, sha) for org, _, sha in rows] == [(a, _sha(ORIGINAL)), (b, _sha(CHANGED))]
    async with client.app[keys.SESSIONMAKER]() as session:
        owners = await session.scalars(select(Study.org_id).where(Study.study_uid == STUDY_UID))
        assert sorted(owners.all()) == sorted([a, b])


async def test_concurrent_stores_of_one_instance_index_it_once(
    client: Client, world: World
) -> None:
    clinic = world.orgs["clinic-a"]
    results = await asyncio.gather(*(_store(client, clinic, [ORIGINAL]) for _ in range(4)))
    outcomes = sorted(r.outcome for (r,) in results)
    assert outcomes == ["duplicate", "duplicate", "duplicate", "stored"]
    assert len(await _rows(client)) == 1


class _FullDisk:
    """Storage whose disk is full (the one thing a test cannot cause for real)."""

    def stage(self, data: bytes, sha256: str) -> StagedBlob:
        raise OSError(errno.ENOSPC, "No space left on device")

    def publish(self, blobs: Sequence[StagedBlob]) -> None:
        raise AssertionError("nothing was staged")

    def discard(self, blobs: Iterable[StagedBlob]) -> None:
        raise AssertionError("nothing was staged")

    def open(self, sha256: str) -> BinaryIO:
        raise AssertionError("nothing was stored")


async def test_a_full_disk_fails_the_instance_and_indexes_nothing(
    client: Client, world: World
) -> None:
    (result,) = await _store(client, world.orgs["clinic-a"], [ORIGINAL], storage=_FullDisk())
    assert (result.outcome, result.reason) == ("failed", "out_of_resources")
    assert "No space left" in result.message
    assert await _rows(client) == []


async def test_startup_removes_files_staged_before_a_crash(
    settings: Settings, world: World
) -> None:
    staging = settings.data_dir / "blobs" / "tmp" / "0123456789abcdef"
    staging.mkdir(parents=True)
    (staging / "partial").write_bytes(b"half an instance")
    (staging.parent / "0123456789abcdef.lock").touch()
    async with TestClient(TestServer(create_app(settings))) as client:
        assert not staging.exists()
        (result,) = await _store(client, world.orgs["clinic-a"], [ORIGINAL])
        assert result.outcome == "stored"
    assert list((settings.data_dir / "blobs" / "tmp").iterdir()) == []


async def test_the_migration_creates_the_archive_as_the_models_declare(
    settings: Settings, world: World
) -> None:
    engine = db.create_engine(settings)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, db.Base.metadata)
        return [d for d in found if "dicom_" in repr(d)]

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
