"""Admin pages: open, list and end break-glass (emergency) access to an organisation's records."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server.access import allow
from server.accounts import break_glass
from server.accounts import service as accounts
from server.accounts.admin_pages import org_options, pick_org
from server.context import db, principal, recorder
from server.errors import DomainError, InvalidInput
from server.forms import query_id, read_form
from server.identity import Role
from server.templates import render


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
) -> web.Response:
    async with db(request) as session:
        grants = await break_glass.grants_of(session=session, user_id=principal(request).user_id)
        orgs = await accounts.list_orgs(session=session)
        return render(
            request,
            "admin/break_glass.html",
            status=status,
            grants=[(g, break_glass.is_active(g)) for g in grants],
            org_options=org_options(orgs),
            max_minutes=break_glass.MAX_MINUTES,
            error=error,
            values=values or {"minutes": str(break_glass.DEFAULT_MINUTES)},
            opened=query_id(request, "opened"),
        )


@allow(Role.ADMIN, page=True)
async def break_glass_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/break-glass."""
    return await _page(request)


@allow(Role.ADMIN, page=True)
async def break_glass_open(request: web.Request) -> web.StreamResponse:
    """POST /admin/break-glass: open emergency access to one organisation, with a reason."""
    form = await read_form(request)
    values = {
        "org_id": form.text("org_id", limit=12),
        "reason": form.text("reason", limit=600),
        "minutes": form.text("minutes", limit=6),
    }
    try:
        if not (values["minutes"].isascii() and values["minutes"].isdigit()):
            raise InvalidInput("Give the duration in whole minutes.")
        async with db(request) as session:
            grant = await break_glass.open_grant(
                session=session,
                audit=recorder(request),
                caller=principal(request),
                org=pick_org(await accounts.list_orgs(session=session), values["org_id"]),
                reason=values["reason"],
                minutes=int(values["minutes"]),
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message, values=values)
    raise web.HTTPSeeOther(f"/admin/break-glass?opened={grant.id}")


@allow(Role.ADMIN, page=True)
async def break_glass_end(request: web.Request) -> web.StreamResponse:
    """POST /admin/break-glass/{id}/end: end emergency access before it expires."""
    try:
        async with db(request) as session:
            await break_glass.end_grant(
                session=session,
                audit=recorder(request),
                caller=principal(request),
                grant_id=int(request.match_info["id"]),
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    raise web.HTTPSeeOther("/admin/break-glass")
