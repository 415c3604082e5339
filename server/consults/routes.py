"""Routes of the consults API."""

from __future__ import annotations

from aiohttp import web

from server.consults import views


def setup(app: web.Application) -> None:
    """Register the consults API."""
    app.router.add_get("/api/v1/duty", views.get_duty)
    app.router.add_put("/api/v1/duty", views.put_duty)
