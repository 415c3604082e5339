"""Reading the audit log: filtered, newest first, paged by id; reading it is audited too.

"Who read patient 17" is `object_type="patient", object_id="17"` (which also finds the
searches and listings whose results named the patient); "everything gp.river did" is
`actor="gp.river"`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.models import AuditEvent
from server.audit.service import Recorder

PAGE_SIZE = 50
EXPORT_BATCH = 1000
OUTCOMES = ("success", "failure", "denied")
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_id",
    "organisation",
    "org_id",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "client_addr",
    "details",
    "hash",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What to look for; empty fields do not filter. Dates are UTC days, both included."""

    actor: str = ""
    action: str = ""
    """A prefix: `patient.` is every action on patients."""
    object_type: str = ""
    object_id: str = ""
    org_id: int | None = None
    outcome: str = ""
    since: date | None = None
    until: date | None = None

    def described(self) -> dict[str, Any]:
        """The filters in use, as an audit event's details name them."""
        return {
            k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items() if v
        }


def _in_list(column: Any, value: str) -> ColumnElement[bool]:
    """The column is the value, or a comma-separated list of ids that holds it."""
    return or_(
        column == value,
        column.startswith(value + ",", autoescape=True),
        column.endswith("," + value, autoescape=True),
        column.contains("," + value + ",", autoescape=True),
    )


def conditions(found: AuditFilter) -> list[ColumnElement[bool]]:
    """SQL conditions on AuditEvent for a filter (LIKE wildcards in values are literal)."""
    where: list[ColumnElement[bool]] = []
    if found.actor:
        where.append(AuditEvent.actor == found.actor)
    if found.action:
        where.append(AuditEvent.action.startswith(found.action, autoescape=True))
    if found.object_type:
        where.append(AuditEvent.object_type == found.object_type)
    if found.object_id:
        where.append(_in_list(AuditEvent.object_id, found.object_id))
    if found.org_id is not None:
        where.append(AuditEvent.org_id == found.org_id)
    if found.outcome:
        where.append(AuditEvent.outcome == found.outcome)
    if found.since is not None:
        where.append(AuditEvent.at >= datetime.combine(found.since, time(), UTC))
    if found.until is not None:
        where.append(AuditEvent.at < datetime.combine(found.until + timedelta(days=1), time(), UTC))
    return where


async def events(
    *, session: AsyncSession, filters: AuditFilter, before: int | None, limit: int
) -> Sequence[AuditEvent]:
    """Matching events with an id below `before` (all when None), newest first."""
    query = select(AuditEvent).where(*conditions(filters))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))).all()


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of the log: its events, and the `before` of the next (older) page, if any."""

    events: Sequence[AuditEvent]
    older: int | None


async def view(
    *,
    session: AsyncSession,
    audit: Recorder,
    filters: AuditFilter,
    before: int | None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """A page of the log for an administrator, audited as audit.view with the filters."""
    rows = await events(session=session, filters=filters, before=before, limit=limit + 1)
    shown = rows[:limit]
    audit.record_apart(
        session,
        action="audit.view",
        object_type="audit_log",
        details={"filters": filters.described(), "before": before, "results": len(shown)},
    )
    return AuditPage(shown, shown[-1].id if len(rows) > limit else None)


async def start_export(*, session: AsyncSession, audit: Recorder, filters: AuditFilter) -> int:
    """Audit an export (audit.export, with the filters) before it starts; the newest id it covers.

    The export then reads batches of events up to that id, each in a short transaction
    of its own, so that a slow download holds no transaction open.
    """
    newest = await session.scalar(select(func.max(AuditEvent.id))) or 0
    await audit.record(
        session,
        action="audit.export",
        object_type="audit_log",
        details={"filters": filters.described(), "up_to": newest},
    )
    return newest


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: formula-like text gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_header() -> str:
    """The CSV header line."""
    return _csv([CSV_COLUMNS])


def csv_rows(rows: Iterable[AuditEvent], org_names: Mapping[int, str]) -> str:
    """CSV lines of events (details as compact JSON), every cell injection-safe."""
    return _csv(
        [
            safe_cell(v)
            for v in (
                e.id,
                e.at.isoformat(),
                e.actor,
                e.actor_id,
                org_names.get(e.org_id, "") if e.org_id is not None else "",
                e.org_id,
                e.action,
                e.object_type,
                e.object_id,
                e.outcome,
                e.client_addr,
                _compact(e.details),
                e.hash,
            )
        ]
        for e in rows
    )


def _compact(details: str) -> str:
    try:
        return json.dumps(json.loads(details), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return details


def _csv(rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()
