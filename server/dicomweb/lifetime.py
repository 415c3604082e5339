"""The rendered cache of a running application (memory and <data dir>/cache/rendered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from server import keys
from server.dicomweb.rendered_cache import RenderedCache


def rendered_cache_root(data_dir: Path) -> Path:
    """Where the rendered images of a data directory are cached (safe to delete when stopped)."""
    return data_dir / "cache" / "rendered"


async def rendered_cache(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the cache, its disk tier indexed; renders under way finished on close."""
    settings = app[keys.SETTINGS]
    cache = RenderedCache(
        root=rendered_cache_root(settings.data_dir),
        memory_bytes=settings.rendered_cache_memory_bytes,
        disk_bytes=settings.rendered_cache_disk_bytes,
        registry=app[keys.METRICS].registry,
    )
    await asyncio.to_thread(cache.start)
    app[keys.RENDERED_CACHE] = cache
    yield
    await cache.close()
