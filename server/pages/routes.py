"""Routes of the browser shell."""

from __future__ import annotations

from aiohttp import web

from server.pages import devices, home, organisations, patients, studies, upload, users, views

_ID = r"{id:\d{1,12}}"
_USERNAME = r"{username:[a-z0-9][a-z0-9._-]{1,63}}"


def setup(app: web.Application) -> None:
    """Register the shell pages."""
    router = app.router
    router.add_get("/", home.home)
    router.add_get("/login", views.login_form)
    router.add_post("/login", views.login_submit)
    router.add_post("/logout", views.logout)

    router.add_get("/patients", patients.patient_list)
    router.add_get("/patients/new", patients.patient_form)
    router.add_post("/patients/new", patients.patient_create)
    router.add_get(f"/patients/{_ID}", patients.patient_detail)

    router.add_get("/admin/organisations", organisations.organisation_list)
    router.add_post("/admin/organisations", organisations.organisation_create)
    router.add_get("/admin/users", users.user_list)
    router.add_post("/admin/users", users.user_create)
    router.add_post(f"/admin/users/{_USERNAME}/disable", users.user_disable)
    router.add_post(f"/admin/users/{_USERNAME}/enable", users.user_enable)
    router.add_get("/admin/devices", devices.device_list)
    router.add_post("/admin/devices", devices.device_enrol)
    router.add_post(f"/admin/devices/{_USERNAME}/tokens", devices.token_issue)
    router.add_post(f"/admin/tokens/{_ID}/revoke", devices.token_revoke)

    router.add_get("/upload", upload.upload_page)
    router.add_post("/upload/zip", upload.upload_zip)
    router.add_post("/upload/photo", upload.upload_photo)
    router.add_post("/upload/link", upload.upload_link)
    router.add_get("/studies", studies.study_list)
    router.add_get(r"/studies/{study:[0-9.]{1,64}}", studies.study_detail)
