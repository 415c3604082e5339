"""Routes of the patients API."""

from __future__ import annotations

from aiohttp import web

from server.patients import views


def setup(app: web.Application) -> None:
    """Register the patients API."""
    app.router.add_post("/api/v1/patients", views.create_patient)
    app.router.add_get("/api/v1/patients", views.list_patients)
    app.router.add_get(r"/api/v1/patients/{id:\d{1,12}}", views.get_patient)
