"""Local blob storage: content-addressed paths, staging, publishing and crash recovery."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
from pathlib import Path

import pytest

from server.archive.storage import LocalBlobStorage


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(params=[True, False], ids=["syncfs", "directory-fsync"])
def storage(tmp_path: Path, request: pytest.FixtureRequest) -> LocalBlobStorage:
    started = LocalBlobStorage(tmp_path / "blobs", filesystem_sync=request.param)
    started.start()
    return started


def test_a_failed_filesystem_sync_fails_the_publish(tmp_path: Path) -> None:
    storage = LocalBlobStorage(tmp_path / "blobs")
    storage.start()
    if storage._syncfs is None:
        pytest.skip("this system has no syncfs(2); publish fsyncs directories")

    def failing(_fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    storage._syncfs = failing
    data = b"DICM" * 10
    with pytest.raises(OSError, match=os.strerror(errno.EIO)) as raised:
        storage.publish([storage.stage(data, hashlib.sha256(data).hexdigest())])
    assert raised.value.errno == errno.EIO


def test_published_blobs_live_under_their_digest(storage: LocalBlobStorage) -> None:
    data = b"DICM" * 100
    digest = hashlib.sha256(data).hexdigest()
    staged = storage.stage(data, digest)
    assert _files(storage.root) != []
    storage.publish([staged, storage.stage(data, digest)])  # the same bytes twice: one file
    blobs = [p for p in _files(storage.root) if not p.endswith(".lock")]
    assert blobs == [f"{digest[:2]}/{digest}"]
    with storage.open(digest) as source:
        assert source.read() == data


def test_discarded_blobs_leave_nothing(storage: LocalBlobStorage) -> None:
    staged = storage.stage(b"x" * 10, "0" * 64)
    storage.discard([staged])
    assert [p for p in _files(storage.root) if not p.endswith(".lock")] == []


@pytest.mark.parametrize("digest", ["../../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/"])
def test_paths_are_only_ever_built_from_digests(storage: LocalBlobStorage, digest: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        storage.stage(b"data", digest)
    with pytest.raises(ValueError, match="SHA-256"):
        storage.open(digest)


def test_recovery_removes_what_dead_processes_staged_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    live = LocalBlobStorage(root)
    live.start()
    live_staged = live.stage(b"in flight", "1" * 64)
    crashed = root / "tmp" / "deadbeefdeadbeef"
    crashed.mkdir()
    (crashed / "a").write_bytes(b"half written")
    (crashed / "b").write_bytes(b"fsynced, never renamed")
    (root / "tmp" / "deadbeefdeadbeef.lock").touch()  # nobody holds it: its process is gone
    (root / "tmp" / "stray").write_bytes(b"no lock at all")
    published = "2" * 64
    live.publish([live.stage(b"kept", published)])

    restarted = LocalBlobStorage(root)
    assert restarted.start() == 3
    remaining = _files(root)
    assert any(p.endswith(f"/{live_staged.token}") for p in remaining)
    assert f"22/{published}" in remaining
    assert not any("deadbeef" in p or "stray" in p for p in remaining)
    live.close()
    restarted.close()
    assert [p for p in _files(root) if p.startswith("tmp/")] == []
    assert os.listdir(root / "tmp") == []


def _publish(storage: LocalBlobStorage, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    storage.publish([storage.stage(data, digest)])
    return digest


def _age(storage: LocalBlobStorage, digest: str, seconds: float) -> float:
    mtime = storage.path(digest).stat().st_mtime - seconds
    os.utime(storage.path(digest), (mtime, mtime))
    return mtime


def test_published_lists_blobs_under_their_digest_and_nothing_else(
    storage: LocalBlobStorage,
) -> None:
    first, second = _publish(storage, b"first"), _publish(storage, b"second")
    storage.stage(b"staged, not published", "3" * 64)
    (storage.root / first[:2] / "notes.txt").write_text("not a blob")
    (storage.root / first[:2] / ("a" * 64 if first[0] != "a" else "b" * 64)).write_text("astray")
    (storage.root / "zz").mkdir()
    (storage.root / "zz" / ("0" * 64)).write_text("not under its prefix")
    (storage.root / "ab" / "cd").mkdir(parents=True)  # a directory is never a blob
    (storage.root / first[:2] / ("f" * 64)).symlink_to(storage.path(first))
    mtime = _age(storage, first, 7200)
    listed = dict(storage.published())
    assert sorted(listed) == sorted([first, second])
    assert listed[first] == mtime


def test_published_of_an_empty_or_missing_root_is_empty(tmp_path: Path) -> None:
    assert list(LocalBlobStorage(tmp_path / "nowhere").published()) == []


def test_remove_unlinks_and_skips_missing_and_refreshed_blobs(storage: LocalBlobStorage) -> None:
    old, fresh, shared = (_publish(storage, data) for data in (b"old", b"fresh", b"shared"))
    cutoff = _age(storage, old, 7200) + 60
    _age(storage, shared, 7200)
    _publish(storage, b"shared")  # stored again: the same file, now recent
    removed = storage.remove([old, fresh, shared, "9" * 64], modified_before=cutoff)
    assert (removed.count, removed.size) == (1, len(b"old"))
    assert not storage.path(old).exists()
    assert storage.path(fresh).exists()
    assert storage.path(shared).exists()
    assert storage.path(old).parent.is_dir()  # publish relies on directories it made durable
    assert storage.remove([fresh]).count == 1
    assert storage.remove([fresh]).count == 0  # already gone: not an error


@pytest.mark.parametrize("digest", ["../../../etc/passwd", "A" * 64, "tmp"])
def test_remove_only_builds_paths_from_digests(storage: LocalBlobStorage, digest: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        storage.remove([digest])
