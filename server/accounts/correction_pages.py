"""Admin pages that correct accounts: a user's name, role and specialties, a password reset
(a temporary password shown once), and an organisation's name, kind and AE title.

Every change is an action of `server.accounts.corrections`, which audits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts import corrections
from server.accounts import service as accounts
from server.accounts.admin_pages import (
    KIND_LABELS,
    ROLE_LABELS,
    organisation_kind,
    organisation_values,
    paused_sign_ins,
)
from server.accounts.models import Organisation, User
from server.context import db, principal, recorder
from server.errors import DomainError, InvalidInput, NotFound
from server.forms import read_form
from server.identity import Role
from server.reports import webhooks
from server.templates import render


async def _user_page(
    request: web.Request,
    *,
    username: str,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    chosen: Sequence[str] | None = None,
) -> web.Response:
    async with db(request) as session:
        user = await accounts.get_user(session=session, username=username)
        locked = await paused_sign_ins(request, session)
        return render(
            request,
            "admin/user.html",
            status=status,
            user=user,
            roles=ROLE_LABELS,
            role_options=[
                (r.value, label)
                for r, label in ROLE_LABELS.items()
                if (r is Role.KIOSK) == (user.role is Role.KIOSK)
            ],
            specialty_options=[(s, s.capitalize()) for s in accounts.SPECIALTIES],
            values=values or {"display_name": user.display_name, "role": user.role.value},
            chosen=set(chosen if chosen is not None else [s.specialty for s in user.specialties]),
            error=error,
            locked=user.username in locked,
            saved=request.query.get("saved") == "1",
            myself=user.id == principal(request).user_id,
        )


@allow(Role.ADMIN, page=True)
async def user_detail(request: web.Request) -> web.StreamResponse:
    """GET /admin/users/{username}: the account, to correct."""
    return await _user_page(request, username=request.match_info["username"])


@allow(Role.ADMIN, page=True)
async def user_update(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}: display name, role and specialties (user.update)."""
    username = request.match_info["username"]
    form = await read_form(request)
    values = {"display_name": form.text("display_name", limit=200), "role": form.text("role")}
    chosen = form.all("specialties")
    try:
        if values["role"] not in {r.value for r in Role}:
            raise InvalidInput("Choose a role.")
        async with db(request) as session:
            user = await accounts.get_user(session=session, username=username)
            await corrections.update_user(
                session=session,
                audit=recorder(request),
                changes=request.app[keys.ACCOUNT_CHANGES],
                user=user,
                display_name=values["display_name"],
                role=Role(values["role"]),
                specialties=chosen,
                by_user_id=principal(request).user_id,
            )
    except NotFound:
        raise
    except DomainError as error:
        return await _user_page(
            request,
            username=username,
            status=error.status,
            error=error.message,
            values=values,
            chosen=chosen,
        )
    raise web.HTTPSeeOther(f"/admin/users/{username}?saved=1")


@allow(Role.ADMIN, page=True)
async def user_password_reset(request: web.Request) -> web.StreamResponse:
    """POST /admin/users/{username}/password: a temporary password, shown once."""
    username = request.match_info["username"]
    try:
        async with db(request) as session:
            user = await accounts.get_user(session=session, username=username)
            temporary = await corrections.reset_password(
                session=session,
                audit=recorder(request),
                changes=request.app[keys.ACCOUNT_CHANGES],
                user=user,
                by_user_id=principal(request).user_id,
            )
    except NotFound:
        raise
    except DomainError as error:
        return await _user_page(
            request, username=username, status=error.status, error=error.message
        )
    response = _temporary_page(request, user, temporary)
    response.headers["Cache-Control"] = "no-store"
    return response


def _temporary_page(request: web.Request, user: User, temporary: str) -> web.Response:
    return render(request, "admin/password.html", user=user, password=temporary)


# Organisations ----------------------------------------------------------------------


async def organisation_of(request: web.Request) -> Organisation:
    """The organisation named by the path's {id}, or 404."""
    org_id = int(request.match_info["id"])
    async with db(request) as session:
        org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"No organisation {org_id}.")
    return org


async def organisation_page(
    request: web.Request,
    *,
    org: Organisation,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    webhook_error: str = "",
    webhook_url: str | None = None,
    new_secret: str | None = None,
) -> web.Response:
    """The organisation page: its correction form and its report webhook (with deliveries)."""
    async with db(request) as session:
        webhook = await webhooks.overview(session=session, org_id=org.id)
    response = render(
        request,
        "admin/organisation.html",
        status=status,
        org=org,
        kinds=KIND_LABELS,
        values=values or {"name": org.name, "kind": org.kind.value, "ae_title": org.ae_title or ""},
        error=error,
        saved=request.query.get("saved") == "1",
        webhook=webhook,
        webhook_url=(webhook.url or "") if webhook_url is None else webhook_url,
        webhook_error=webhook_error,
        webhook_saved=request.query.get("webhook", ""),
        new_secret=new_secret,
    )
    if new_secret is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@allow(Role.ADMIN, page=True)
async def organisation_detail(request: web.Request) -> web.StreamResponse:
    """GET /admin/organisations/{id}: the organisation, to correct."""
    return await organisation_page(request, org=await organisation_of(request))


@allow(Role.ADMIN, page=True)
async def organisation_update(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations/{id}: name, kind and AE title (org.update)."""
    org = await organisation_of(request)
    values = organisation_values(await read_form(request))
    try:
        kind = organisation_kind(values)
        async with db(request) as session:
            current = await session.get(Organisation, org.id)
            if current is None:
                raise NotFound(f"No organisation {org.id}.")
            await corrections.update_organisation(
                session=session,
                audit=recorder(request),
                org=current,
                name=values["name"],
                kind=kind,
                ae_title=values["ae_title"] or None,
            )
    except NotFound:
        raise
    except DomainError as error:
        return await organisation_page(
            request, org=org, status=error.status, error=error.message, values=values
        )
    raise web.HTTPSeeOther(f"/admin/organisations/{org.id}?saved=1")
