"""Routes of the events stream."""

from __future__ import annotations

from aiohttp import web

from server.events import views


def setup(app: web.Application) -> None:
    """Register the events WebSocket."""
    app.router.add_get("/api/v1/events", views.events_socket)
