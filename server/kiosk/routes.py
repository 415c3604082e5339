"""Routes of the kiosk: its API, its pages and its background work."""

from __future__ import annotations

from aiohttp import web

from server.kiosk import (
    enrolment_pages,
    followup_pages,
    followup_views,
    lifetime,
    roster_pages,
    take_home_pages,
    views,
)
from server.kiosk.paths import PERSON, VISIT

_USERNAME = r"{username:[a-z0-9][a-z0-9._-]{1,63}}"
_ID = r"{id:[0-9]{1,12}}"
_FID = r"{fid:[0-9]{1,12}}"


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
    router.add_post("/api/v1/kiosk/visits", views.check_in)
    router.add_get("/api/v1/kiosk/visits/current", views.get_current_visit)
    router.add_get(visit, views.get_visit)
    router.add_post(f"{visit}/vitals", views.post_vitals)
    router.add_post(f"{visit}/queue", views.join_queue)
    router.add_get(f"{visit}/queue", views.get_queue)
    router.add_delete(f"{visit}/queue", views.leave_queue)
    router.add_post(f"{visit}/finish", views.finish)
    router.add_get(f"{visit}/summary", views.get_summary)
    router.add_put(f"{visit}/clinic", views.link_clinic)
    router.add_get("/api/v1/kiosk/clinics", views.list_clinics)
    router.add_get("/api/v1/kiosk/clinic-visits", views.clinic_visits)
    router.add_get(f"/api/v1/kiosk/people/{PERSON}/vitals", views.person_vitals)
    router.add_get("/kiosk/take-home/{token}", take_home_pages.take_home)
    # Roster and follow-ups
    app.cleanup_ctx.append(lifetime.reminder_watch)
    router.add_get("/api/v1/roster", followup_views.list_shifts)
    router.add_post("/api/v1/roster", followup_views.add_shift)
    router.add_delete(f"/api/v1/roster/{_ID}", followup_views.remove_shift)
    router.add_get(f"{visit}/slots", followup_views.list_slots)
    router.add_post(f"{visit}/follow-ups", followup_views.book)
    router.add_post(f"{visit}/follow-ups/{_FID}/join", followup_views.join)
    router.add_get("/admin/roster", roster_pages.roster_page)
    router.add_post("/admin/roster", roster_pages.add_shift)
    router.add_post(f"/admin/roster/{_ID}/remove", roster_pages.remove_shift)
    router.add_get(f"/kiosk/follow-ups/{followup_pages.LINK}.ics", followup_pages.calendar_file)
    router.add_get(f"/kiosk/follow-ups/{followup_pages.LINK}", followup_pages.home_link)
