"""Orphan blob collection against a real index: what is removed, what is kept, and when."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, select

from server import keys
from server.app import create_app
from server.archive import collection, lifetime
from server.archive import service as archive
from server.archive.collection import CollectionReport, collect_orphans
from server.archive.models import Instance
from server.archive.storage import LocalBlobStorage
from server.settings import Settings
from tests.dicom_tools.part10 import dataset, part10
from tests.support import Client, World, store

ORIGINAL = part10(dataset())
CHANGED = part10(dataset(replace={0x00100010: b"Changed^Name"}))
TWO_HOURS = 2 * 60 * 60


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _storage(client: Client) -> LocalBlobStorage:
    storage = client.app[keys.ARCHIVE].storage
    assert isinstance(storage, LocalBlobStorage)
    return storage


def _publish(storage: LocalBlobStorage, data: bytes) -> str:
    """A blob published with no index row: what a crash before the commit leaves."""
    digest = _sha(data)
    storage.publish([storage.stage(data, digest)])
    return digest


def _age(storage: LocalBlobStorage, *digests: str, seconds: float = TWO_HOURS) -> None:
    for digest in digests:
        mtime = storage.path(digest).stat().st_mtime - seconds
        os.utime(storage.path(digest), (mtime, mtime))


async def _store(
    client: Client, org_id: int, items: Sequence[bytes], conflict: archive.ConflictPolicy
) -> list[archive.StoreResult]:
    return await store(client.app, org_id, items, conflict=conflict)


async def _collect(client: Client, **options: timedelta) -> CollectionReport:
    return await collect_orphans(client.app[keys.SESSIONMAKER], _storage(client), **options)


async def _indexed(client: Client, org_id: int) -> list[str]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(select(Instance.sha256).where(Instance.org_id == org_id))
        return list(rows.all())


async def test_old_orphans_go_referenced_and_young_ones_stay(client: Client, world: World) -> None:
    storage = _storage(client)
    (stored,) = await _store(client, world.orgs["clinic-a"], [ORIGINAL], "reject")
    assert stored.outcome == "stored"
    old, young = _publish(storage, b"crashed long ago"), _publish(storage, b"being indexed")
    _age(storage, _sha(ORIGINAL), old)
    staged = storage.stage(b"in flight", "1" * 64)
    stray = storage.root / "ab" / "README"
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("an operator's note")
    os.utime(stray, (0, 0))

    report = await _collect(client)

    assert report == CollectionReport(
        examined=3, removed=1, bytes_freed=len(b"crashed long ago"), kept_recent=1
    )
    assert not storage.path(old).exists()
    assert storage.path(young).exists()
    with storage.open(_sha(ORIGINAL)) as blob:
        assert blob.read() == ORIGINAL
    assert stray.read_text() == "an operator's note"
    assert any(p.name == staged.token for p in storage.tmp.rglob("*"))
    assert await _collect(client) == CollectionReport(examined=2, kept_recent=1)


async def test_the_grace_and_the_clock_decide_what_is_old(client: Client) -> None:
    storage = _storage(client)
    orphan = _publish(storage, b"an orphan")
    _age(storage, orphan)
    assert (await _collect(client, grace=timedelta(hours=3))).kept_recent == 1
    assert storage.path(orphan).exists()
    assert (await _collect(client, grace=timedelta(minutes=90))).removed == 1
    assert not storage.path(orphan).exists()


async def test_collection_works_in_chunks(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection, "CHUNK", 2)
    storage = _storage(client)
    await _store(client, world.orgs["clinic-a"], [ORIGINAL], "reject")
    orphans = [_publish(storage, f"orphan {n}".encode()) for n in range(5)]
    _age(storage, _sha(ORIGINAL), *orphans)
    report = await _collect(client)
    assert (report.examined, report.removed, report.kept_recent) == (6, 5, 0)
    assert [digest for digest, _ in storage.published()] == [_sha(ORIGINAL)]


async def test_replace_orphans_the_old_bytes_which_are_collected_after_the_grace(
    client: Client, world: World
) -> None:
    storage = _storage(client)
    clinic = world.orgs["clinic-a"]
    await _store(client, clinic, [ORIGINAL], "reject")
    (replaced,) = await _store(client, clinic, [CHANGED], "replace")
    assert replaced.outcome == "replaced"
    _age(storage, _sha(ORIGINAL), _sha(CHANGED))

    report = await _collect(client)

    assert (report.removed, report.bytes_freed) == (1, len(ORIGINAL))
    assert not storage.path(_sha(ORIGINAL)).exists()
    (current,) = await _indexed(client, clinic)
    assert current == _sha(CHANGED)
    with storage.open(current) as blob:
        assert blob.read() == CHANGED


async def test_bytes_another_organisation_still_refers_to_are_kept(
    client: Client, world: World
) -> None:
    storage = _storage(client)
    a, b = world.orgs["clinic-a"], world.orgs["clinic-b"]
    await _store(client, a, [ORIGINAL], "reject")
    await _store(client, b, [ORIGINAL], "reject")  # same bytes: one blob, two rows
    await _store(client, a, [CHANGED], "replace")
    _age(storage, _sha(ORIGINAL), _sha(CHANGED))

    report = await _collect(client)

    assert (report.examined, report.removed) == (2, 0)
    assert await _indexed(client, b) == [_sha(ORIGINAL)]
    with storage.open(_sha(ORIGINAL)) as blob:
        assert blob.read() == ORIGINAL


async def test_storing_an_old_orphan_again_makes_it_recent(client: Client, world: World) -> None:
    storage = _storage(client)
    orphan = _publish(storage, ORIGINAL)  # published, then the process died before the commit
    _age(storage, orphan)
    await _store(client, world.orgs["clinic-a"], [ORIGINAL], "reject")
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(delete(Instance).where(Instance.sha256 == orphan))
    report = await _collect(client)  # unreferenced again, but only just stored
    assert (report.removed, report.kept_recent) == (0, 1)


async def test_the_server_collects_in_the_background_and_stops_cleanly(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifetime, "COLLECTION_DELAY", 0.0)
    monkeypatch.setattr(lifetime, "COLLECTION_INTERVAL", 0.05)
    async with TestClient(TestServer(create_app(settings))) as client:
        storage = _storage(client)
        orphan = _publish(storage, b"left by a crash")
        _age(storage, orphan)
        for _ in range(200):
            if not storage.path(orphan).exists():
                break
            await asyncio.sleep(0.05)
        assert not storage.path(orphan).exists()
        (result,) = await _store(client, world.orgs["clinic-a"], [ORIGINAL], "reject")
        assert result.outcome == "stored"
        await asyncio.sleep(0.2)
        with storage.open(_sha(ORIGINAL)) as blob:
            assert blob.read() == ORIGINAL


async def test_a_failed_background_collection_is_logged_not_raised(
    settings: Settings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def broken(*args: object, **kwargs: object) -> CollectionReport:
        nonlocal calls
        calls += 1
        raise OSError("disk on fire")

    monkeypatch.setattr(lifetime, "COLLECTION_DELAY", 0.0)
    monkeypatch.setattr(lifetime, "COLLECTION_INTERVAL", 0.01)
    monkeypatch.setattr(lifetime, "collect_orphans", broken)
    with caplog.at_level(logging.ERROR, logger=lifetime.__name__):
        async with TestClient(TestServer(create_app(settings))) as client:
            for _ in range(100):
                if calls >= 2:
                    break
                await asyncio.sleep(0.02)
            assert (await client.get("/healthz")).status == 200
    assert calls >= 2  # retried at the next interval
    assert "orphan blob collection failed" in caplog.text


async def test_the_server_does_not_wait_for_the_first_collection(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()

    async def slow(*args: object, **kwargs: object) -> CollectionReport:
        started.set()
        await asyncio.sleep(3600)
        return CollectionReport()

    monkeypatch.setattr(lifetime, "COLLECTION_DELAY", 0.0)
    monkeypatch.setattr(lifetime, "collect_orphans", slow)
    async with TestClient(TestServer(create_app(settings))) as client:
        await asyncio.wait_for(started.wait(), 5)
        assert (await client.get("/healthz")).status == 200
    # leaving the block cancelled the hour-long collection
