"""The administrators' reading page: turnaround by specialty and priority, open requests, reassign.

Administrators read no patient data: the page names requests by number, clinic,
specialty, priority and times, never by patient or question.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts import service as accounts
from server.context import db, principal, recorder
from server.db import utcnow
from server.errors import DomainError
from server.forms import query_id, read_form
from server.identity import Role
from server.reading import service
from server.reading import templates as report_texts
from server.templates import render

TURNAROUND_DAYS = 30


async def _page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    async with db(request) as session:
        turnaround = await service.turnaround(
            session=session, since=utcnow() - timedelta(days=TURNAROUND_DAYS)
        )
        open_requests = await service.items(session=session, caller=principal(request))
        specialists = await accounts.list_users(session=session, role=Role.SPECIALIST)
    readers = {
        specialty: sorted(
            u.username
            for u in specialists
            if u.is_active and specialty in {s.specialty for s in u.specialties}
        )
        for specialty in {i.request.specialty for i in open_requests}
    }
    return render(
        request,
        "reading/admin.html",
        status=status,
        turnaround=turnaround,
        days=TURNAROUND_DAYS,
        open_requests=open_requests,
        readers=readers,
        error=error,
        done=query_id(request, "done"),
    )


@allow(Role.ADMIN, page=True)
async def reading_admin(request: web.Request) -> web.StreamResponse:
    """GET /admin/reading."""
    return await _page(request)


@allow(Role.ADMIN, page=True)
async def reassign(request: web.Request) -> web.StreamResponse:
    """POST /admin/reading/{id}/reassign: give an open request to a named reader."""
    request_id = int(request.match_info["id"])
    form = await read_form(request)
    try:
        async with db(request) as session:
            await service.reassign(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                policy=service.Policy.of(request.app[keys.SETTINGS]),
                request_id=request_id,
                username=form.text("username", limit=64),
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    raise web.HTTPSeeOther(f"/admin/reading?done={request_id}")


async def _templates_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: dict[str, tuple[str, str]] | None = None,
) -> web.Response:
    kinds = []
    async with db(request) as session:
        for kind in report_texts.DEFAULT_TEXT:
            findings, impression, changed = await service.report_template(
                session=session, kind=kind
            )
            if values and kind in values:
                findings, impression = values[kind]
            kinds.append((kind, findings, impression, changed))
    return render(
        request,
        "reading/admin_templates.html",
        status=status,
        kinds=kinds,
        names=report_texts.TEXT_CONTEXT,
        error=error,
        saved=saved
        if (saved := request.query.get("saved", "")) in report_texts.DEFAULT_TEXT
        else "",
    )


@allow(Role.ADMIN, page=True)
async def report_templates(request: web.Request) -> web.StreamResponse:
    """GET /admin/report-templates: the text new reports start from, per kind."""
    return await _templates_page(request)


@allow(Role.ADMIN, page=True)
async def save_report_template(request: web.Request) -> web.StreamResponse:
    """POST /admin/report-templates/{kind}: change one kind's findings and impression text."""
    kind = request.match_info["kind"]
    form = await read_form(request)
    findings = form.text("findings", limit=report_texts.TEXT_LIMIT + 1, strip=False)
    impression = form.text("impression", limit=report_texts.TEXT_LIMIT + 1, strip=False)
    try:
        async with db(request) as session:
            await service.save_report_template(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                kind=kind,
                findings=findings,
                impression=impression,
            )
    except DomainError as error:
        return await _templates_page(
            request, status=error.status, error=error.message, values={kind: (findings, impression)}
        )
    raise web.HTTPSeeOther(f"/admin/report-templates?saved={kind}")
