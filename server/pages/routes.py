"""Routes of the browser shell."""

from __future__ import annotations

from aiohttp import web

from server.pages import views


def setup(app: web.Application) -> None:
    """Register the shell pages."""
    app.router.add_get("/", views.home)
    app.router.add_get("/login", views.login_form)
    app.router.add_post("/login", views.login_submit)
    app.router.add_post("/logout", views.logout)
