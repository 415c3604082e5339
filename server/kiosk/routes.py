"""Routes of the kiosk: its API, its pages and its background work."""

from __future__ import annotations

from aiohttp import web

from server.kiosk import followup_pages, followup_views, lifetime, roster_pages

_ID = r"{id:[0-9]{1,12}}"
_FID = r"{fid:[0-9]{1,12}}"


def setup(app: web.Application) -> None:
    """Register the kiosk's API and pages."""
    # Roster and follow-ups
    app.cleanup_ctx.append(lifetime.reminder_watch)
    app.router.add_get("/api/v1/roster", followup_views.list_shifts)
    app.router.add_post("/api/v1/roster", followup_views.add_shift)
    app.router.add_delete(f"/api/v1/roster/{_ID}", followup_views.remove_shift)
    app.router.add_get(f"/api/v1/kiosk/visits/{_ID}/slots", followup_views.list_slots)
    app.router.add_post(f"/api/v1/kiosk/visits/{_ID}/follow-ups", followup_views.book)
    app.router.add_post(f"/api/v1/kiosk/visits/{_ID}/follow-ups/{_FID}/join", followup_views.join)
    app.router.add_get("/admin/roster", roster_pages.roster_page)
    app.router.add_post("/admin/roster", roster_pages.add_shift)
    app.router.add_post(f"/admin/roster/{_ID}/remove", roster_pages.remove_shift)
    app.router.add_get(f"/kiosk/follow-ups/{followup_pages.LINK}.ics", followup_pages.calendar_file)
    app.router.add_get(f"/kiosk/follow-ups/{followup_pages.LINK}", followup_pages.home_link)
