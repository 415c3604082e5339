"""Routes of the kiosk: its API, its pages and its background work."""

from __future__ import annotations

from aiohttp import web

from server.kiosk import enrolment_pages, take_home_pages, views
from server.kiosk.paths import PERSON, VISIT

_USERNAME = r"{username:[a-z0-9][a-z0-9._-]{1,63}}"


def setup(app: web.Application) -> None:
    """Register the kiosk's API and pages."""
    router = app.router
    # Enrolment
    router.add_post("/api/v1/kiosk/enrolments", views.create_enrolment)
    router.add_get(enrolment_pages.KIOSK_PATH, enrolment_pages.kiosk_entry)
    router.add_post(enrolment_pages.ENROL_PATH, enrolment_pages.kiosk_enrol)
    router.add_post(f"/admin/devices/{_USERNAME}/enrolment", enrolment_pages.enrolment_create)
    # Visits
    visit = f"/api/v1/kiosk/visits/{VISIT}"
    app.router.add_post("/api/v1/kiosk/visits", views.check_in)
    app.router.add_get(visit, views.get_visit)
    app.router.add_post(f"{visit}/vitals", views.post_vitals)
    app.router.add_post(f"{visit}/queue", views.join_queue)
    app.router.add_get(f"{visit}/queue", views.get_queue)
    app.router.add_delete(f"{visit}/queue", views.leave_queue)
    app.router.add_post(f"{visit}/finish", views.finish)
    app.router.add_get(f"{visit}/summary", views.get_summary)
    app.router.add_put(f"{visit}/clinic", views.link_clinic)
    app.router.add_get("/api/v1/kiosk/clinics", views.list_clinics)
    app.router.add_get("/api/v1/kiosk/clinic-visits", views.clinic_visits)
    app.router.add_get(f"/api/v1/kiosk/people/{PERSON}/vitals", views.person_vitals)
    app.router.add_get("/kiosk/take-home/{token}", take_home_pages.take_home)
