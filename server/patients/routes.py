"""Routes of the patients API and the GP's patient pages."""

from __future__ import annotations

from aiohttp import web

from server.patients import edit_pages, pages, views

_ID = r"{id:\d{1,12}}"
_STUDY = r"{study:[0-9.]{1,64}}"


def setup(app: web.Application) -> None:
    """Register the patients API and pages."""
    router = app.router
    router.add_post("/api/v1/patients", views.create_patient)
    router.add_get("/api/v1/patients", views.list_patients)
    router.add_get(f"/api/v1/patients/{_ID}", views.get_patient)
    router.add_patch(f"/api/v1/patients/{_ID}", views.update_patient)

    router.add_get("/patients", pages.patient_list)
    router.add_get("/patients/new", pages.patient_form)
    router.add_post("/patients/new", pages.patient_create)
    router.add_get(f"/patients/{_ID}", pages.patient_detail)
    router.add_get(f"/patients/{_ID}/edit", edit_pages.patient_edit_form)
    router.add_post(f"/patients/{_ID}/edit", edit_pages.patient_edit)
    router.add_post(f"/patients/{_ID}/studies/{_STUDY}/unlink", edit_pages.study_unlink)
    router.add_post(f"/patients/{_ID}/studies/{_STUDY}/link", edit_pages.study_relink)
