"""Admin pages: user accounts (list, create, disable and enable)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from server.access import allow
from server.accounts import invalidation, passwords
from server.accounts import service as accounts
from server.accounts.models import Role
from server.errors import DomainError, InvalidInput
from server.pages.forms import audit_admin, org_options, pick_org, query_id, read_form
from server.requests import db, principal
from server.templates import render

ROLE_LABELS = {
    Role.GP: "GP",
    Role.SPECIALIST: "Specialist",
    Role.KIOSK: "Kiosk device",
    Role.ADMIN: "Administrator",
}
# Pages an enable/disable form may return to.
_RETURN_TO = ("/admin/users", "/admin/devices")


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    chosen: Sequence[str] = (),
) -> web.Response:
    async with db(request) as session, session.begin():
        users = await accounts.list_users(session=session)
        orgs = await accounts.list_orgs(session=session)
        return render(
            request,
            "admin/users.html",
            status=status,
            users=users,
            org_options=org_options(orgs),
            roles=ROLE_LABELS,
            specialty_options=[(s, s.capitalize()) for s in accounts.SPECIALTIES],
            min_password=passwords.MIN_LENGTH,
            error=error,
            values=values or {},
            chosen=set(chosen),
            created=query_id(request, "created"),
            changed=query_id(request, "changed"),
        )


@allow(Role.ADMIN, page=True)
async def user_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/users."""
    return await _page(request)


@allow(Role.ADMIN, page=True)
async def user_create(request: web.Request) -> web.StreamResponse:
    """POST /admin/users: create an account, audited as user.create."""
    form = await read_form(request)
    values = {
        "username": form.text("username", limit=64),
        "display_name": form.text("display_name", limit=128),
        "role": form.text("role"),
        "org_id": form.text("org_id", limit=12),
    }
    chosen = form.all("specialties")
    password = form.text("password", limit=1024, strip=False)
    try:
        if values["role"] not in {r.value for r in Role}:
            raise InvalidInput("Choose a role.")
        if not password:
            raise InvalidInput("Set an initial password.")
        async with db(request) as session, session.begin():
            org = pick_org(await accounts.list_orgs(session=session), values["org_id"])
            user = await accounts.add_user(
                session=session,
                username=values["username"],
                display_name=values["display_name"],
                org=org,
                role=Role(values["role"]),
                password=password,
                specialties=chosen,
            )
            await audit_admin(
                request,
                session,
                action="user.create",
                object_type="user",
                object_id=user.id,
                org_id=org.id,
                details={"username": user.username, "role": user.role.value},
            )
    except DomainError as error:
        return await _page(
            request, status=error.status, error=error.message, values=values, chosen=chosen
        )
    raise web.HTTPSeeOther(f"/admin/users?created={user.id}")


async def _set_active(request: web.Request, *, active: bool) -> web.StreamResponse:
    username = request.match_info["username"]
    form = await read_form(request)
    back = form.text("back")
    back = back if back in _RETURN_TO else _RETURN_TO[0]
    try:
        if not active and username == principal(request).username:
            raise InvalidInput("You cannot disable your own account.")
        async with db(request) as session, session.begin():
            user = await accounts.get_user(session=session, username=username)
            await accounts.set_active(session=session, user=user, active=active)
            await audit_admin(
                request,
                session,
                action="user.enable" if active else "user.disable",
                object_type="user",
                object_id=user.id,
                org_id=user.org_id,
                details={"username": user.username},
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    await invalidation.user_changed(request, user.id)
    raise web.HTTPSeeOther(f"{back}?changed={user.id}")


@allow(Role.ADMIN, page=True)
async def user_disable(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/disable: end their sessions and revoke their tokens."""
    return await _set_active(request, active=False)


@allow(Role.ADMIN, page=True)
async def user_enable(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/enable."""
    return await _set_active(request, active=True)
