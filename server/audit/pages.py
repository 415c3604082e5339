"""The audit log viewer for administrators: filters, pages of 50 newest first, CSV export.

Reading the log is itself audited, by the queries (audit.view, audit.export).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from server.access import allow
from server.accounts import service as accounts
from server.audit import queries
from server.audit.queries import AuditFilter
from server.context import db, recorder
from server.db import utcnow
from server.identity import Role
from server.templates import render

OBJECT_TYPES = (
    ("patient", "Patient"),
    ("study", "Study"),
    ("series", "Series"),
    ("instance", "Instance"),
    ("user", "User"),
    ("token", "Token"),
    ("organisation", "Organisation"),
    ("break_glass", "Emergency access"),
    ("audit_log", "Audit log"),
)
_LIMITS = {"actor": 64, "action": 64, "object_type": 32, "object_id": 128}


@dataclass(frozen=True, slots=True)
class Parsed:
    """The filters of a request's query string, what was wrong with them, and the page."""

    filters: AuditFilter
    values: dict[str, str]
    errors: dict[str, str]
    before: int | None


def _day(values: Mapping[str, str], name: str, errors: dict[str, str]) -> date | None:
    text = values.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = "Enter the date as YYYY-MM-DD."
        return None


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def parse(query: MultiMapping[str]) -> Parsed:
    """The filters of the query string; a wrong field is reported and does not filter."""
    values = {
        name: query.get(name, "").strip()[:limit]
        for name, limit in {
            **_LIMITS,
            "org_id": 12,
            "outcome": 16,
            "since": 10,
            "until": 10,
            "before": 12,
        }.items()
    }
    errors: dict[str, str] = {}
    org_id = _number(values["org_id"])
    if values["org_id"] and org_id is None:
        errors["org_id"] = "Choose an organisation."
    if values["outcome"] and values["outcome"] not in queries.OUTCOMES:
        errors["outcome"] = "Choose one of the outcomes."
    since, until = _day(values, "since", errors), _day(values, "until", errors)
    if since and until and since > until:
        errors["until"] = "The end of the period is before its start."
    if values["object_id"] and not values["object_type"]:
        errors["object_type"] = "Choose the kind of object the identifier names."
    filters = AuditFilter(
        actor=values["actor"],
        action=values["action"],
        object_type=values["object_type"],
        object_id=values["object_id"] if "object_type" not in errors else "",
        org_id=org_id,
        outcome=values["outcome"] if "outcome" not in errors else "",
        since=since,
        until=until if "until" not in errors else None,
    )
    return Parsed(filters, values, errors, _number(values["before"]))


def _query_string(values: Mapping[str, str], **changes: str) -> str:
    kept = {k: v for k, v in {**values, **changes}.items() if v}
    return urlencode(kept)


@allow(Role.ADMIN, page=True)
async def audit_log(request: web.Request) -> web.StreamResponse:
    """GET /admin/audit: the log, filtered, newest first, 50 a page (audited as audit.view)."""
    parsed = parse(request.query)
    async with db(request) as session:
        page = await queries.view(
            session=session,
            audit=recorder(request),
            filters=parsed.filters,
            before=parsed.before,
        )
        orgs = await accounts.list_orgs(session=session)
    filters = {k: v for k, v in parsed.values.items() if k != "before"}
    return render(
        request,
        "admin/audit.html",
        status=422 if parsed.errors else 200,
        events=page.events,
        values=parsed.values,
        errors=parsed.errors,
        org_names={o.id: o.name for o in orgs},
        org_options=[(o.id, o.name) for o in orgs],
        object_types=OBJECT_TYPES,
        outcomes=[(o, o.capitalize()) for o in queries.OUTCOMES],
        filtered=bool(parsed.filters.described()),
        newer=parsed.before is not None,
        first_page=_query_string(filters),
        older_page=_query_string(filters, before=str(page.older)) if page.older else "",
        csv_query=_query_string(filters),
        page_size=queries.PAGE_SIZE,
    )


@allow(Role.ADMIN, page=True)
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """GET /admin/audit.csv: the filtered log as CSV, streamed (audited as audit.export)."""
    parsed = parse(request.query)
    if parsed.errors:
        return await audit_log(request)
    filters = parsed.filters
    async with db(request) as session:
        newest = await queries.start_export(
            session=session, audit=recorder(request), filters=filters
        )
        org_names = {o.id: o.name for o in await accounts.list_orgs(session=session)}
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="doorstep-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(b"\xef\xbb\xbf" + queries.csv_header().encode())
    before = newest + 1
    while True:
        async with db(request) as session:
            rows = await queries.events(
                session=session, filters=filters, before=before, limit=queries.EXPORT_BATCH
            )
        if not rows:
            break
        await response.write(queries.csv_rows(rows, org_names).encode())
        before = rows[-1].id
    await response.write_eof()
    return response
