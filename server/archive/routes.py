"""Routes of the GP's study browser (the archive's DICOMweb face is `server.dicomweb`)."""

from __future__ import annotations

from aiohttp import web

from server.archive import pages


def setup(app: web.Application) -> None:
    """Register the study pages."""
    app.router.add_get("/studies", pages.study_list)
    app.router.add_get(r"/studies/{study:[0-9.]{1,64}}", pages.study_detail)
