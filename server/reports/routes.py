"""Routes of the reports API."""

from __future__ import annotations

from aiohttp import web

from server.reports import lifetime, pages, views
from server.reports.webhook_pages import setup_webhook_pages

_ID = r"{id:[0-9]{1,12}}"


def setup(app: web.Application) -> None:
    """Register the reports API and pages, the signing service and the webhook sender."""
    app.cleanup_ctx.append(lifetime.signing)
    app.cleanup_ctx.append(lifetime.webhook_sender)
    app.router.add_post(f"/api/v1/reading-requests/{_ID}/report/sign", views.sign)
    app.router.add_get(f"/api/v1/reading-requests/{_ID}/report/preview", views.preview)
    app.router.add_get("/api/v1/reports", views.list_reports)
    app.router.add_post("/api/v1/reports/verify", views.verify)
    app.router.add_get(f"/api/v1/reports/{_ID}", views.get_report)
    app.router.add_get(f"/api/v1/reports/{_ID}.pdf", views.get_pdf)
    app.router.add_get(f"/api/v1/reports/{_ID}/fhir", views.get_fhir)
    app.router.add_post(f"/api/v1/reports/{_ID}/addenda", views.add_addendum)
    app.router.add_post(f"/api/v1/reports/{_ID}/acknowledge", views.acknowledge)
    pages.setup_pages(app)
    setup_webhook_pages(app)
