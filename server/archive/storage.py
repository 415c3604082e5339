"""Content-addressed blob storage for DICOM instances.

Every method blocks: call it through ``asyncio.to_thread``. A blob is named by
the SHA-256 of its bytes and nothing else, so no value from a DICOM file or a
request ever becomes part of a path. Writing is two steps so that a caller can
group the slow parts of a request: ``stage`` writes and fsyncs a temporary
file, ``publish`` renames staged files into place and makes the renames
durable; only then may the caller commit its index rows.

Renames are made durable by one ``syncfs(2)`` of the blob filesystem where the
system has it (Linux), else by an fsync of each directory that gained an entry.
A request's instances land in up to 256 directories; on ext4 here those
directory fsyncs (~45 for 50 instances, each a journal commit) cost more than
the rest of the request, while one syncfs commits the journal once.

Each process stages under its own ``tmp/<id>/`` directory and holds an
exclusive lock on ``tmp/<id>.lock`` while it runs. Startup recovery removes the
staging directories whose lock nobody holds: those left by a crash.

Published blobs are only ever removed by orphan collection (``published`` lists
them with their modification time, ``remove`` deletes the unreferenced ones).
Publishing bytes that are already in place refreshes the file's modification
time, so a blob that a store is about to index again always looks recent.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{2}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_FSYNC_THREADS = 8
_PREAMBLE_LENGTH = 128


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """Bytes written and fsynced to a temporary file, not yet visible under their digest."""

    sha256: str
    size: int
    token: str


@dataclass(frozen=True, slots=True)
class SpooledInstance:
    """A received instance too large to hold in memory, written to a file in the staging area."""

    token: str
    size: int


class Spool:
    """A staging file being filled with one received instance (blocking writes)."""

    def __init__(self, path: Path, token: str) -> None:
        self.path = path
        self.token = token
        self._file: BinaryIO | None = path.open("xb")
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append bytes."""
        assert self._file is not None, "the spool is closed"
        self._file.write(data)
        self.size += len(data)

    def close(self) -> SpooledInstance:
        """Finish the file (not yet fsynced: staging does that) and name what it holds."""
        if self._file is not None:
            self._file.close()
            self._file = None
        return SpooledInstance(self.token, self.size)

    def abandon(self) -> None:
        """Remove the file: its instance will never be stored."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class RemovedBlobs:
    """What a removal deleted: how many published blobs and their total size in bytes."""

    count: int = 0
    size: int = 0


class BlobStorage(Protocol):
    """Where instance bytes live: staged, published under their SHA-256, opened for reading."""

    def stage(self, data: bytes, sha256: str) -> StagedBlob:
        """Write data to a temporary file and fsync it; sha256 must be the digest of data."""
        ...

    def spool(self) -> Spool:
        """A new staging file for an instance received in pieces (see `stage_spooled`)."""
        ...

    def staging_path(self, token: str) -> Path:
        """Where a staged or spooled file is, to read it in place."""
        ...

    def stage_spooled(
        self, spooled: SpooledInstance, sha256: str, *, zero_preamble: bool
    ) -> StagedBlob:
        """Stage a spooled instance where it is: zero its preamble if asked, fsync it."""
        ...

    def abandon_spooled(self, spooled: SpooledInstance) -> None:
        """Remove a spooled instance that will not be stored."""
        ...

    def publish(self, blobs: Sequence[StagedBlob]) -> None:
        """Make staged blobs durable under their digest (rename, then make the renames durable)."""
        ...

    def discard(self, blobs: Iterable[StagedBlob]) -> None:
        """Remove staged blobs that will not be published."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Open a published blob for reading."""
        ...

    def published(self) -> Iterator[tuple[str, float]]:
        """Yield (sha256, modification time) of every published blob, lazily."""
        ...

    def remove(
        self, sha256s: Iterable[str], *, modified_before: float | None = None
    ) -> RemovedBlobs:
        """Delete published blobs (missing ones are skipped), then make that durable.

        With modified_before (a POSIX timestamp), a blob modified since then is kept.
        """
        ...


def checked_digest(sha256: str) -> str:
    """The digest unchanged if it is 64 lower-case hex digits; a path is only built from these."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return sha256


def _take_lock(path: Path) -> int | None:
    """Create and lock a staging lock file; None if a reclaiming process got in the way."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


def _reclaim(lock_path: Path) -> int:
    """Remove the staging directory of a lock nobody holds; return how many files it held."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0  # a live process holds it
    try:
        removed = _remove(lock_path.with_suffix(""))
        lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return removed


def _remove(path: Path) -> int:
    """Delete a staging directory or stray file; return how many files it held."""
    if path.is_dir():
        count = sum(1 for child in path.rglob("*") if not child.is_dir())
        shutil.rmtree(path, ignore_errors=True)
        return count
    if path.exists():
        path.unlink(missing_ok=True)
        return 1
    return 0


def _refresh(target: Path) -> bool:
    """Touch a published blob so orphan collection sees it as recent.

    False when it is absent (or not ours to touch): the caller renames the new copy over it.
    """
    try:
        os.utime(target)
    except (FileNotFoundError, PermissionError):
        return False
    return True


def _libc_syncfs() -> Callable[[int], int] | None:
    """syncfs(2) from the C library, where the system has it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_SYNCFS = _libc_syncfs()


def _sync_filesystem(syncfs: Callable[[int], int], path: Path) -> None:
    """Flush everything written to the filesystem holding path; OSError if that failed."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStorage:
    """Blobs under a local directory as ``ab/<sha256>``, staged under ``tmp/``.

    One level of 256 directories: where directories are fsynced (no syncfs), a request's
    renames share few of them (two levels cost ~3 directory fsyncs per instance).
    """

    def __init__(self, root: Path, *, filesystem_sync: bool = True) -> None:
        """filesystem_sync False makes renames durable by directory fsyncs even on Linux."""
        self.root = root
        self._syncfs = _SYNCFS if filesystem_sync else None
        self.tmp = root / "tmp"
        self._name = secrets.token_hex(8)
        self._staging = self.tmp / self._name
        self._lock: int | None = None
        self._durable: set[Path] = set()

    def start(self) -> int:
        """Take this process's staging lock, create its directory, return stale files removed."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        while self._lock is None:
            self._lock = _take_lock(self.tmp / f"{self._name}.lock")
            if self._lock is None:  # another process reclaimed the name meanwhile
                self._name = secrets.token_hex(8)
        self._staging = self.tmp / self._name
        self._staging.mkdir()
        _fsync_directory(self.root.parent)
        _fsync_directory(self.root)
        return self.recover()

    def recover(self) -> int:
        """Remove what processes that are gone left staged; return how many files were removed."""
        removed = 0
        for lock_path in self.tmp.glob("*.lock"):
            if lock_path.stem != self._name:
                removed += _reclaim(lock_path)
        for entry in self.tmp.iterdir():
            if entry.suffix != ".lock" and not (self.tmp / f"{entry.name}.lock").exists():
                removed += _remove(entry)  # a lock is always taken before its directory exists
        return removed

    def close(self) -> None:
        """Remove this process's staging directory and release its lock."""
        shutil.rmtree(self._staging, ignore_errors=True)
        (self.tmp / f"{self._name}.lock").unlink(missing_ok=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def path(self, sha256: str) -> Path:
        """Where a published blob lives."""
        digest = checked_digest(sha256)
        return self.root / digest[:2] / digest

    def stage(self, data: bytes, sha256: str) -> StagedBlob:
        """Write data to a temporary file and fsync it; sha256 must be the digest of data."""
        checked_digest(sha256)
        token = secrets.token_hex(16)
        path = self._staging / token
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return StagedBlob(sha256=sha256, size=len(data), token=token)

    def spool(self) -> Spool:
        """A new staging file for an instance received in pieces (see `stage_spooled`)."""
        token = secrets.token_hex(16)
        return Spool(self._staging / token, token)

    def staging_path(self, token: str) -> Path:
        """Where a staged or spooled file is, to read it in place."""
        if not _TOKEN.fullmatch(token):
            raise ValueError("not a staging token")
        return self._staging / token

    def stage_spooled(
        self, spooled: SpooledInstance, sha256: str, *, zero_preamble: bool
    ) -> StagedBlob:
        """Stage a spooled instance where it is: zero its preamble if asked, fsync it."""
        checked_digest(sha256)
        fd = os.open(self.staging_path(spooled.token), os.O_WRONLY)
        try:
            if zero_preamble:
                os.pwrite(fd, bytes(_PREAMBLE_LENGTH), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return StagedBlob(sha256=sha256, size=spooled.size, token=spooled.token)

    def abandon_spooled(self, spooled: SpooledInstance) -> None:
        """Remove a spooled instance that will not be stored."""
        self.staging_path(spooled.token).unlink(missing_ok=True)

    def publish(self, blobs: Sequence[StagedBlob]) -> None:
        """Rename staged blobs into place, then make the renames durable (see the module)."""
        directories: set[Path] = set()
        for blob in blobs:
            target = self.path(blob.sha256)
            source = self._staging / blob.token
            target.parent.mkdir(parents=True, exist_ok=True)
            if _refresh(target):  # same digest, same bytes: keep the file, now recent
                source.unlink(missing_ok=True)
            else:
                os.replace(source, target)
            directories.add(target.parent)
            if target.parent not in self._durable:
                # Another process (or a crash) may have created it without an fsync yet.
                directories.add(self.root)
        if not directories:
            return
        if self._syncfs is not None:
            _sync_filesystem(self._syncfs, self.root)
        else:
            with ThreadPoolExecutor(min(_FSYNC_THREADS, len(directories))) as pool:
                list(pool.map(_fsync_directory, directories))
        self._durable.update(directories)

    def discard(self, blobs: Iterable[StagedBlob]) -> None:
        """Remove staged blobs that will not be published."""
        for blob in blobs:
            (self._staging / blob.token).unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        """Open a published blob for reading."""
        return self.path(sha256).open("rb")

    def published(self) -> Iterator[tuple[str, float]]:
        """Yield (sha256, modification time) of every published blob, one directory at a time.

        Only regular files named by a digest under the directory of its first two
        characters count: staging (``tmp/``) and any other name are never listed.
        """
        try:
            prefixes = sorted(
                entry.name
                for entry in os.scandir(self.root)
                if _PREFIX.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
            )
        except FileNotFoundError:
            return
        for prefix in prefixes:
            try:
                entries = os.scandir(self.root / prefix)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    if not (
                        _SHA256.fullmatch(entry.name)
                        and entry.name.startswith(prefix)
                        and entry.is_file(follow_symlinks=False)
                    ):
                        continue
                    try:
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue
                    yield entry.name, mtime

    def remove(
        self, sha256s: Iterable[str], *, modified_before: float | None = None
    ) -> RemovedBlobs:
        """Unlink published blobs, then fsync each directory that lost one, once.

        A missing blob is skipped; with modified_before, so is one modified since then
        (a store published the same bytes again). Directories stay: ``publish`` remembers
        which ones it has made durable.
        """
        count = size = 0
        directories: set[Path] = set()
        for sha256 in sha256s:
            path = self.path(sha256)
            try:
                found = path.stat(follow_symlinks=False)
                if not stat.S_ISREG(found.st_mode):
                    continue
                if modified_before is not None and found.st_mtime >= modified_before:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            count += 1
            size += found.st_size
            directories.add(path.parent)
        for directory in directories:
            _fsync_directory(directory)
        return RemovedBlobs(count=count, size=size)
