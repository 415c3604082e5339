"""Routes of the ECG API."""

from __future__ import annotations

from aiohttp import web

from server.ecg import import_views


def setup(app: web.Application) -> None:
    """Register the ECG API."""
    router = app.router
    router.add_post("/api/v1/ecg/import", import_views.import_ecg)
