"""Routes for operators."""

from __future__ import annotations

from aiohttp import web

from server.ops import views


def setup(app: web.Application) -> None:
    """Register health, readiness and metrics."""
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/metrics", views.metrics)
