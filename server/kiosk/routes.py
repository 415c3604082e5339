"""Routes of the kiosk: its API, its pages and its background work."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the kiosk's API and pages."""
