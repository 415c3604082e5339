"""Routes of the browser upload page and its zip, photo, aECG and link endpoints."""

from __future__ import annotations

from aiohttp import web

from server.uploads import pages


def setup(app: web.Application) -> None:
    """Register the upload pages."""
    router = app.router
    router.add_get("/upload", pages.upload_page)
    router.add_post("/upload/zip", pages.upload_zip)
    router.add_post("/upload/photo", pages.upload_photo)
    router.add_post("/upload/aecg", pages.upload_aecg)
    router.add_post("/upload/link", pages.upload_link)
