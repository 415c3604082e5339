"""Admin pages: the organisations of the network and their user accounts.

The pages read forms and render; every change is an action of
`server.accounts.administration`, which audits it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.access import allow
from server.accounts import administration, dicom_peers, passwords
from server.accounts import service as accounts
from server.accounts.models import Organisation
from server.context import db, principal, recorder
from server.errors import DomainError, InvalidInput
from server.forms import Form, query_id, read_form
from server.identity import OrgKind, Role
from server.templates import render

KIND_LABELS = {
    OrgKind.CLINIC: "Clinic",
    OrgKind.HOSPITAL: "Hospital",
    OrgKind.CORNER: "Medical corner",
}
ROLE_LABELS = {
    Role.GP: "GP",
    Role.SPECIALIST: "Specialist",
    Role.KIOSK: "Kiosk device",
    Role.ADMIN: "Administrator",
}
# Pages an enable/disable form may return to.
_RETURN_TO = ("/admin/users", "/admin/devices")


def org_options(orgs: Iterable[Organisation]) -> list[tuple[int, str]]:
    """(id, label) pairs for an organisation select."""
    return [(org.id, f"{org.name} ({org.kind.value})") for org in orgs]


def pick_org(orgs: Iterable[Organisation], org_id: str) -> Organisation:
    """The organisation chosen in a form's select (by id)."""
    for org in orgs:
        if str(org.id) == org_id:
            return org
    raise InvalidInput("Choose an organisation.")


def organisation_values(form: Form) -> dict[str, str]:
    """What an organisation form says: name, kind and AE title (upper-cased), as typed."""
    return {
        "name": form.text("name", limit=200),
        "kind": form.text("kind"),
        "ae_title": form.text("ae_title", limit=32).upper(),
    }


def organisation_kind(values: Mapping[str, str]) -> OrgKind:
    """The kind chosen in an organisation form."""
    if values["kind"] not in {k.value for k in OrgKind}:
        raise InvalidInput("Choose the kind of organisation.")
    return OrgKind(values["kind"])


async def paused_sign_ins(request: web.Request, session: AsyncSession) -> set[str]:
    """Usernames whose sign-in some address is being made to wait for now (Unlock clears)."""
    settings = request.app[keys.SETTINGS]
    return await accounts.locked_usernames(
        session=session,
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_failure_window_minutes),
    )


# Organisations ------------------------------------------------------------------


async def _organisations_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    created: int | None = None,
) -> web.Response:
    async with db(request) as session:
        orgs = await accounts.list_orgs(session=session)
        return render(
            request,
            "admin/organisations.html",
            status=status,
            orgs=orgs,
            dicom_peers=await dicom_peers.networks_by_org(session=session),
            kinds=KIND_LABELS,
            error=error,
            values=values or {},
            created=created,
        )


@allow(Role.ADMIN, page=True)
async def organisation_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/organisations."""
    return await _organisations_page(request, created=query_id(request, "created"))


@allow(Role.ADMIN, page=True)
async def organisation_create(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations: create one, audited as org.create."""
    values = organisation_values(await read_form(request))
    try:
        kind = organisation_kind(values)
        async with db(request) as session:
            org = await administration.create_organisation(
                session=session,
                audit=recorder(request),
                name=values["name"],
                kind=kind,
                ae_title=values["ae_title"] or None,
            )
    except DomainError as error:
        return await _organisations_page(
            request, status=error.status, error=error.message, values=values
        )
    raise web.HTTPSeeOther(f"/admin/organisations?created={org.id}")


# Users ---------------------------------------------------------------------------


async def _users_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    chosen: Sequence[str] = (),
) -> web.Response:
    async with db(request) as session:
        users = await accounts.list_users(session=session)
        orgs = await accounts.list_orgs(session=session)
        locked = await paused_sign_ins(request, session)
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
            unlocked=query_id(request, "unlocked"),
            locked=locked,
        )


@allow(Role.ADMIN, page=True)
async def user_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/users."""
    return await _users_page(request)


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
        async with db(request) as session:
            org = pick_org(await accounts.list_orgs(session=session), values["org_id"])
            user = await administration.create_user(
                session=session,
                audit=recorder(request),
                username=values["username"],
                display_name=values["display_name"],
                org=org,
                role=Role(values["role"]),
                password=password,
                specialties=chosen,
            )
    except DomainError as error:
        return await _users_page(
            request, status=error.status, error=error.message, values=values, chosen=chosen
        )
    raise web.HTTPSeeOther(f"/admin/users?created={user.id}")


async def _set_active(request: web.Request, *, active: bool) -> web.StreamResponse:
    username = request.match_info["username"]
    form = await read_form(request)
    back = form.text("back")
    back = back if back in _RETURN_TO else _RETURN_TO[0]
    try:
        async with db(request) as session:
            user = await accounts.get_user(session=session, username=username)
            await administration.set_user_active(
                session=session,
                audit=recorder(request),
                changes=request.app[keys.ACCOUNT_CHANGES],
                user=user,
                active=active,
                by_user_id=principal(request).user_id,
            )
    except DomainError as error:
        return await _users_page(request, status=error.status, error=error.message)
    raise web.HTTPSeeOther(f"{back}?changed={user.id}")


@allow(Role.ADMIN, page=True)
async def user_disable(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/disable: end their sessions and revoke their tokens."""
    return await _set_active(request, active=False)


@allow(Role.ADMIN, page=True)
async def user_enable(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/enable."""
    return await _set_active(request, active=True)


@allow(Role.ADMIN, page=True)
async def user_unlock(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/unlock: forget failed sign-ins, wherever they came from."""
    try:
        async with db(request) as session:
            user = await accounts.get_user(session=session, username=request.match_info["username"])
            await administration.unlock_user(session=session, audit=recorder(request), user=user)
    except DomainError as error:
        return await _users_page(request, status=error.status, error=error.message)
    raise web.HTTPSeeOther(f"/admin/users?unlocked={user.id}")
