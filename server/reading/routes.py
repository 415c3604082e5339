"""Routes of the reading API and pages, and the SLA watch."""

from __future__ import annotations

from aiohttp import web

from server.reading import admin_pages, lifetime, pages, views

_ID = r"{id:[0-9]{1,12}}"


def setup(app: web.Application) -> None:
    """Register the reading API and the SLA watch."""
    app.cleanup_ctx.append(lifetime.sla_watch)
    app.router.add_post("/api/v1/reading-requests", views.create_request)
    app.router.add_get("/api/v1/reading-requests", views.list_requests)
    app.router.add_post("/api/v1/reading-requests/next", views.claim_next)
    app.router.add_get(f"/api/v1/reading-requests/{_ID}", views.get_request)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/claim", views.claim)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/release", views.release)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/renew", views.renew)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/reassign", views.reassign)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/cancel", views.cancel)
    app.router.add_put(f"/api/v1/reading-requests/{_ID}/report", views.save_draft)
    app.router.add_get(f"/api/v1/reading-requests/{_ID}/report", views.get_draft)
    app.router.add_get("/api/v1/worklist", views.worklist)
    pages.setup_pages(app)
    app.router.add_get("/admin/reading", admin_pages.reading_admin)
    app.router.add_post(f"/admin/reading/{_ID}/reassign", admin_pages.reassign)
    app.router.add_get("/admin/report-templates", admin_pages.report_templates)
    app.router.add_post(
        "/admin/report-templates/{kind:[a-z]{1,32}}", admin_pages.save_report_template
    )
