"""The cache of rendered images and thumbnails: a memory LRU in front of a disk LRU.

Entries are named by a key digest (see ``rendered.RenderKey``) that covers everything
the bytes depend on, starting with the SHA-256 of the stored instance, so an entry is
never stale: an instance's new content is a new key, and old entries age out. It sits
behind scoping: callers locate (scope and audit) first and only then ask the cache.

Memory: an LRU of bytes, bounded by ``memory_bytes``, used from the event loop only.

Disk: ``<root>/ab/<digest>`` files, each a magic, the SHA-256 of the body and the
body, bounded by ``disk_bytes`` (least recently used first out; a hit refreshes the
file's time, so the order survives a restart). A file is written under a temporary
name and renamed into place, so no reader sees it half-written; it is not fsynced (a
cache may lose entries in a crash), and the hash is checked on every read, so a
truncated or damaged file is removed and rendered again, never served. Startup scans
the directory into the LRU and removes temporary files an interrupted process left.
Several processes may share the directory; each bounds what it knows of (its own
writes and what it found at startup), and a file another process removed is a miss.

A miss is rendered once however many requests ask for it at the same time, in a task
the cache owns (a client that goes away does not cancel the work the others wait for).
Refusals (an instance with nothing to render) are remembered in memory, by count.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from server.errors import DomainError

MAGIC = b"DSRC\x00\x01\r\n"
"""First bytes of a disk entry (format version 1)."""
_HASH_LENGTH = 32
_HEADER = len(MAGIC) + _HASH_LENGTH
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TEMPORARY_SUFFIX = ".tmp"
MAX_REFUSALS = 4096
"""Refusals remembered (most recent kept)."""

log = logging.getLogger(__name__)


class CacheMetrics:
    """Counters of the rendered cache, in the application's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "doorstep_rendered_cache_hits",
            "Rendered images and thumbnails served from the cache, by tier.",
            ["tier"],
            registry=registry,
        )
        self.misses = Counter(
            "doorstep_rendered_cache_misses",
            "Rendered images and thumbnails rendered because no tier had them.",
            registry=registry,
        )
        self.corrupt = Counter(
            "doorstep_rendered_cache_corrupt",
            "Disk entries found damaged or truncated, removed and rendered again.",
            registry=registry,
        )
        self.evictions = Counter(
            "doorstep_rendered_cache_evictions",
            "Entries evicted to stay within a tier's budget, by tier.",
            ["tier"],
            registry=registry,
        )
        self.size = Gauge(
            "doorstep_rendered_cache_bytes",
            "Bytes held by a tier of the rendered cache.",
            ["tier"],
            registry=registry,
        )


class MemoryTier:
    """An LRU of bytes bounded by their total length (event loop only, no locking)."""

    def __init__(self, budget: int, metrics: CacheMetrics) -> None:
        self.budget = budget
        self.total = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._metrics = metrics

    def get(self, key: str) -> bytes | None:
        """The entry, now the most recently used; None when absent."""
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, key: str, body: bytes) -> None:
        """Keep an entry, evicting the least recently used past the budget."""
        if len(body) > self.budget or key in self._entries:
            return
        self._entries[key] = body
        self.total += len(body)
        while self.total > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.total -= len(evicted)
            self._metrics.evictions.labels("memory").inc()
        self._metrics.size.labels("memory").set(self.total)


class DiskTier:
    """Files under a root, bounded by their total size (blocking; any thread)."""

    def __init__(self, root: Path, budget: int, metrics: CacheMetrics) -> None:
        self.root = root
        self.budget = budget
        self.total = 0
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._metrics = metrics

    def path(self, key: str) -> Path:
        """Where an entry lives (keys are hex digests, never request values)."""
        return self.root / key[:2] / key

    def start(self) -> int:
        """Index the entries already on disk (oldest first); remove temporary files. Blocking."""
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[float, str, int]] = []
        removed = 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.endswith(_TEMPORARY_SUFFIX):
                    entry.unlink(missing_ok=True)
                    removed += 1
                elif _DIGEST.fullmatch(entry.name) and entry.name[:2] == folder.name:
                    with contextlib.suppress(FileNotFoundError):
                        status = entry.stat()
                        found.append((status.st_mtime, entry.name, status.st_size))
        with self._lock:
            for _, key, size in sorted(found):
                self._sizes[key] = size
                self.total += size
            self._evict()
        return removed

    def get(self, key: str) -> bytes | None:
        """The entry's body if its file is whole; a damaged file is removed. Blocking."""
        path = self.path(key)
        try:  # also finds what another process sharing the directory wrote
            data = path.read_bytes()
        except OSError as error:  # never written, evicted by another process, unreadable
            if not isinstance(error, FileNotFoundError):
                log.warning("could not read a rendered cache entry", extra={"error": str(error)})
            self._forget(key)
            return None
        body = data[_HEADER:]
        if (
            data[: len(MAGIC)] != MAGIC
            or hashlib.sha256(body).digest() != data[len(MAGIC) : _HEADER]
        ):
            log.warning("removed a damaged rendered cache entry", extra={"entry": key})
            self._metrics.corrupt.inc()
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            self._forget(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        with self._lock:
            self.total += len(data) - self._sizes.pop(key, 0)
            self._sizes[key] = len(data)
            self._evict()
        return body

    def put(self, key: str, body: bytes) -> None:
        """Write an entry (temporary file, then rename) and evict past the budget. Blocking."""
        size = _HEADER + len(body)
        if size > self.budget:
            return
        path = self.path(key)
        temporary = path.with_name(f"{key}.{secrets.token_hex(8)}{_TEMPORARY_SUFFIX}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("xb") as out:
                out.write(MAGIC + hashlib.sha256(body).digest() + body)
            os.replace(temporary, path)
        except OSError as error:  # a full disk or a read-only directory costs a render, no more
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            log.warning("could not write a rendered cache entry", extra={"error": str(error)})
            return
        with self._lock:
            self.total += size - self._sizes.pop(key, 0)
            self._sizes[key] = size
            self._evict()

    def _forget(self, key: str) -> None:
        with self._lock:
            self.total -= self._sizes.pop(key, 0)
            self._metrics.size.labels("disk").set(self.total)

    def _evict(self) -> None:
        """Remove the least recently used files until the total fits (lock held)."""
        while self.total > self.budget and self._sizes:
            key, size = self._sizes.popitem(last=False)
            self.total -= size
            with contextlib.suppress(OSError):
                self.path(key).unlink(missing_ok=True)
            self._metrics.evictions.labels("disk").inc()
        self._metrics.size.labels("disk").set(self.total)


class RenderedCache:
    """Rendered bytes by key digest: memory, then disk, then one render per missing key."""

    def __init__(
        self, *, root: Path, memory_bytes: int, disk_bytes: int, registry: CollectorRegistry
    ) -> None:
        self.metrics = CacheMetrics(registry)
        self.memory = MemoryTier(memory_bytes, self.metrics)
        self.disk = DiskTier(root, disk_bytes, self.metrics) if disk_bytes > 0 else None
        self._pending: dict[str, asyncio.Task[bytes]] = {}
        self._refusals: OrderedDict[str, DomainError] = OrderedDict()

    def start(self) -> None:
        """Index the disk tier (blocking)."""
        if self.disk is not None:
            removed = self.disk.start()
            if removed:
                log.warning("removed %d partial rendered cache files", removed)

    async def close(self) -> None:
        """Wait for the renders under way (their requests are waiting for them too)."""
        pending = list(self._pending.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def fetch(self, key: str, render: Callable[[], bytes]) -> bytes:
        """The entry of key, from memory, from disk, or rendered (blocking ``render``) once."""
        body = self.memory.get(key)
        if body is not None:
            self.metrics.hits.labels("memory").inc()
            return body
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(key, render))
            self._pending[key] = task
            task.add_done_callback(partial(self._done, key))
        return await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[bytes]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone

    async def _load(self, key: str, render: Callable[[], bytes]) -> bytes:
        """From disk, else rendered and written to disk (one thread hop), then into memory."""
        body, tier = await asyncio.to_thread(self._read_or_render, key, render)
        if tier == "disk":
            self.metrics.hits.labels("disk").inc()
        else:
            self.metrics.misses.inc()
        self.memory.put(key, body)
        return body

    def _read_or_render(self, key: str, render: Callable[[], bytes]) -> tuple[bytes, str]:
        if self.disk is not None and (body := self.disk.get(key)) is not None:
            return body, "disk"
        body = render()
        if self.disk is not None:
            self.disk.put(key, body)
        return body, "rendered"

    def refusal(self, key: str) -> DomainError | None:
        """The remembered refusal to render key, if any (a new exception to raise)."""
        error = self._refusals.get(key)
        return None if error is None else type(error)(error.message, details=error.details)

    def refuse(self, key: str, error: DomainError) -> None:
        """Remember that key cannot be rendered (rendering is deterministic)."""
        self._refusals[key] = error
        self._refusals.move_to_end(key)
        while len(self._refusals) > MAX_REFUSALS:
            self._refusals.popitem(last=False)
