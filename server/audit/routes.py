"""Routes of the audit log viewer."""

from __future__ import annotations

from aiohttp import web

from server.audit import pages


def setup(app: web.Application) -> None:
    """Register the administrators' audit log pages."""
    app.router.add_get("/admin/audit", pages.audit_log)
    app.router.add_get("/admin/audit.csv", pages.audit_csv)
