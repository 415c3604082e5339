"""Routes of the accounts API."""

from __future__ import annotations

from aiohttp import web

from server.accounts import views


def setup(app: web.Application) -> None:
    """Register the accounts API."""
    app.router.add_post("/api/v1/auth/login", views.login)
    app.router.add_post("/api/v1/auth/logout", views.logout)
    app.router.add_get("/api/v1/me", views.me)
