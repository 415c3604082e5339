"""Routes of the ECG API."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.ecg import import_views, service, views

_SOP = r"{sop_instance_uid:[0-9.]{1,64}}"


def setup(app: web.Application) -> None:
    """Register the ECG API (reading, paper, aECG import) and its cache."""
    app[keys.ECG_CACHE] = service.EcgCache()
    app.router.add_post("/api/v1/ecg/import", import_views.import_ecg)
    app.router.add_get(f"/api/v1/ecg/{_SOP}", views.get_ecg)
    app.router.add_get(f"/api/v1/ecg/{_SOP}.svg", views.get_ecg_svg)
