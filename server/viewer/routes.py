"""Routes of the study viewer."""

from __future__ import annotations

from aiohttp import web

from server.viewer import pages


def setup(app: web.Application) -> None:
    """Register the viewer page."""
    app.router.add_get(r"/studies/{study:[0-9.]{1,64}}/view", pages.study_viewer)
