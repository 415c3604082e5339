"""The kiosk app's pages (a placeholder: the welcome screen)."""

from __future__ import annotations

from aiohttp import web

from server.templates import render


async def kiosk_app(request: web.Request) -> web.StreamResponse:
    """The kiosk's first screen, for a kiosk device (GET /kiosk hands over to it)."""
    return render(request, "home_kiosk.html")
