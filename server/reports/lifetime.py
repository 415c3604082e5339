"""The reports feature's lifetime: the process's signing service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from server import keys
from server.reports.signing import Signing


def authority_directory(data_dir: Path) -> Path:
    """Where the deployment's signing CA lives: <data dir>/signing."""
    return data_dir / "signing"


async def signing(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the signing service (its CA is loaded, or created, on first use)."""
    settings = app[keys.SETTINGS]
    app[keys.SIGNING] = Signing(
        directory=authority_directory(settings.data_dir), secret=settings.resolved_secret_key()
    )
    yield
