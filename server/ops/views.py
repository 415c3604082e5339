"""Health, readiness and metrics for operators and load balancers."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from server import keys
from server.access import allow
from server.context import db
from server.db import utcnow
from server.identity import Role
from server.reading import service as reading


@allow(public=True)
async def healthz(request: web.Request) -> web.StreamResponse:
    """GET /healthz: the process is alive."""
    return web.json_response({"status": "ok"})


@allow(public=True)
async def readyz(request: web.Request) -> web.StreamResponse:
    """GET /readyz: the database answers and the data directory is writable."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3), request.app[keys.ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any failure means not ready; the reason is reported, not raised
        checks["database"] = f"error: {type(error).__name__}"
    data_dir = request.app[keys.SETTINGS].data_dir
    checks["storage"] = (
        "ok" if await asyncio.to_thread(_writable, data_dir) else "error: not writable"
    )
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@allow(Role.ADMIN)
async def metrics(request: web.Request) -> web.StreamResponse:
    """GET /metrics: Prometheus text exposition (admin token or session).

    The reading service's figures come from the database at each scrape, so that every
    server process reports the same turnaround.
    """
    await _reading_figures(request)
    return web.Response(
        body=request.app[keys.METRICS].render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


async def _reading_figures(request: web.Request) -> None:
    collected = request.app[keys.METRICS]
    async with db(request) as session:
        rows = await reading.turnaround(session=session, since=utcnow() - timedelta(days=30))
    for gauge in (collected.reading_open, collected.reading_overdue, collected.reading_turnaround):
        gauge.clear()
    for row in rows:
        labels = {"specialty": row.specialty, "priority": row.priority}
        collected.reading_open.labels(**labels).set(row.open)
        collected.reading_overdue.labels(**labels).set(row.overdue)
        for stage, minutes in (("claim", row.to_claim_minutes), ("sign", row.to_sign_minutes)):
            if minutes is not None:
                collected.reading_turnaround.labels(**labels, stage=stage).set(minutes)
