"""Routes of the accounts API and the administrators' account pages."""

from __future__ import annotations

from aiohttp import web

from server.accounts import (
    account_pages,
    admin_pages,
    break_glass_pages,
    correction_pages,
    device_pages,
    views,
)

_ID = r"{id:\d{1,12}}"
_USERNAME = r"{username:[a-z0-9][a-z0-9._-]{1,63}}"


def setup(app: web.Application) -> None:
    """Register the accounts API and the admin pages."""
    router = app.router
    router.add_post("/api/v1/auth/login", views.login)
    router.add_post("/api/v1/auth/logout", views.logout)
    router.add_get("/api/v1/me", views.me)

    router.add_get("/admin/organisations", admin_pages.organisation_list)
    router.add_post("/admin/organisations", admin_pages.organisation_create)
    router.add_get(f"/admin/organisations/{_ID}", correction_pages.organisation_detail)
    router.add_post(f"/admin/organisations/{_ID}", correction_pages.organisation_update)
    router.add_get("/admin/users", admin_pages.user_list)
    router.add_post("/admin/users", admin_pages.user_create)
    router.add_post(f"/admin/users/{_USERNAME}/disable", admin_pages.user_disable)
    router.add_post(f"/admin/users/{_USERNAME}/enable", admin_pages.user_enable)
    router.add_post(f"/admin/users/{_USERNAME}/unlock", admin_pages.user_unlock)
    router.add_get(f"/admin/users/{_USERNAME}", correction_pages.user_detail)
    router.add_post(f"/admin/users/{_USERNAME}", correction_pages.user_update)
    router.add_post(f"/admin/users/{_USERNAME}/password", correction_pages.user_password_reset)
    router.add_get("/account/password", account_pages.password_form)
    router.add_post("/account/password", account_pages.password_change)
    router.add_get("/admin/devices", device_pages.device_list)
    router.add_post("/admin/devices", device_pages.device_enrol)
    router.add_post(f"/admin/devices/{_USERNAME}/tokens", device_pages.token_issue)
    router.add_post(f"/admin/tokens/{_ID}/revoke", device_pages.token_revoke)
    router.add_get("/admin/break-glass", break_glass_pages.break_glass_list)
    router.add_post("/admin/break-glass", break_glass_pages.break_glass_open)
    router.add_post(f"/admin/break-glass/{_ID}/end", break_glass_pages.break_glass_end)
