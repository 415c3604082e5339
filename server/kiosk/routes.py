"""Routes of the kiosk: its API, its pages and its background work."""

from __future__ import annotations

from aiohttp import web

from server.kiosk import enrolment_pages, views

_USERNAME = r"{username:[a-z0-9][a-z0-9._-]{1,63}}"


def setup(app: web.Application) -> None:
    """Register the kiosk's API and pages."""
    router = app.router
    # Enrolment
    router.add_post("/api/v1/kiosk/enrolments", views.create_enrolment)
    router.add_get(enrolment_pages.KIOSK_PATH, enrolment_pages.kiosk_entry)
    router.add_post(enrolment_pages.ENROL_PATH, enrolment_pages.kiosk_enrol)
    router.add_post(f"/admin/devices/{_USERNAME}/enrolment", enrolment_pages.enrolment_create)
