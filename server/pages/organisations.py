"""Admin pages: the organisations of the network (list and create)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server.access import allow
from server.accounts import service as accounts
from server.accounts.models import OrgKind, Role
from server.errors import DomainError, InvalidInput
from server.pages.forms import audit_admin, query_id, read_form
from server.requests import db
from server.templates import render

KIND_LABELS = {
    OrgKind.CLINIC: "Clinic",
    OrgKind.HOSPITAL: "Hospital",
    OrgKind.CORNER: "Medical corner",
}


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
    created: int | None = None,
) -> web.Response:
    async with db(request) as session, session.begin():
        orgs = await accounts.list_orgs(session=session)
        return render(
            request,
            "admin/organisations.html",
            status=status,
            orgs=orgs,
            kinds=KIND_LABELS,
            error=error,
            values=values or {},
            created=created,
        )


@allow(Role.ADMIN, page=True)
async def organisation_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/organisations."""
    return await _page(request, created=query_id(request, "created"))


@allow(Role.ADMIN, page=True)
async def organisation_create(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations: create one, audited as org.create."""
    form = await read_form(request)
    values = {
        "name": form.text("name", limit=200),
        "kind": form.text("kind"),
        "ae_title": form.text("ae_title", limit=32).upper(),
    }
    try:
        if values["kind"] not in {k.value for k in OrgKind}:
            raise InvalidInput("Choose the kind of organisation.")
        async with db(request) as session, session.begin():
            org = await accounts.add_org(
                session=session,
                name=values["name"],
                kind=OrgKind(values["kind"]),
                ae_title=values["ae_title"] or None,
            )
            await audit_admin(
                request,
                session,
                action="org.create",
                object_type="organisation",
                object_id=org.id,
                org_id=org.id,
                details={"name": org.name, "kind": org.kind.value},
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message, values=values)
    raise web.HTTPSeeOther(f"/admin/organisations?created={org.id}")
