"""Routes of the browser shell: sign-in, sign-out and each role's home."""

from __future__ import annotations

from aiohttp import web

from server.pages import home, sign_in


def setup(app: web.Application) -> None:
    """Register the shell pages."""
    router = app.router
    router.add_get("/", home.home)
    router.add_get("/login", sign_in.login_form)
    router.add_post("/login", sign_in.login_submit)
    router.add_post("/logout", sign_in.logout)
