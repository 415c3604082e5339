"""Report pages: the clinic's signed reports, one report, acknowledging receipt, verifying a PDF."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from server import keys
from server.access import allow
from server.context import db, principal, recorder
from server.errors import MalformedInput
from server.forms import posted
from server.identity import Role
from server.reports import service
from server.templates import render

_ID = r"{id:[0-9]{1,12}}"
VERIFY_MAX_BYTES = 32 * 1024 * 1024
LIST_LIMIT = 200
MEASUREMENT_LABELS = {
    "heart_rate_bpm": ("Heart rate", "bpm"),
    "rr_ms": ("RR interval", "ms"),
    "pr_ms": ("PR interval", "ms"),
    "qrs_ms": ("QRS duration", "ms"),
    "qt_ms": ("QT interval", "ms"),
    "qtc_ms": ("QTc", "ms"),
    "axis_deg": ("Axis", "°"),
    "rhythm": ("Rhythm", ""),
    "technique": ("Technique", ""),
    "comparison": ("Comparison", ""),
}


def setup_pages(app: web.Application) -> None:
    """Register the report pages (called from server/reports/routes.py)."""
    app.router.add_get("/reports", report_list)
    app.router.add_get("/reports/verify", verify_form)
    app.router.add_post("/reports/verify", verify)
    app.router.add_get(f"/reports/{_ID}", report_page)
    app.router.add_post(f"/reports/{_ID}/acknowledge", acknowledge)


def measurement_rows(measurements: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value with unit) of each measurement of a record, known ones first."""
    rows = []
    ordered = [k for k in MEASUREMENT_LABELS if k in measurements]
    ordered += sorted(k for k in measurements if k not in MEASUREMENT_LABELS)
    for key in ordered:
        value = measurements[key]
        if value is None or value == "":
            continue
        label, unit = MEASUREMENT_LABELS.get(key, (key.replace("_", " ").capitalize(), ""))
        if isinstance(value, float):
            value = round(value) if abs(value) >= 10 else round(value, 1)
        rows.append((label, f"{value} {unit}".strip()))
    return rows


@allow(Role.GP, Role.SPECIALIST, page=True)
async def report_list(request: web.Request) -> web.StreamResponse:
    """GET /reports: the clinic's signed reports (specialists: their specialties'), newest first."""
    async with db(request) as session:
        found = await service.summaries(
            session=session, caller=principal(request), limit=LIST_LIMIT
        )
    return render(request, "reports/list.html", reports=found, limit=LIST_LIMIT)


@allow(Role.GP, Role.SPECIALIST, page=True)
async def report_page(request: web.Request) -> web.StreamResponse:
    """GET /reports/{id}: one signed report as recorded, its addenda, downloads, acknowledgement."""
    report_id = int(request.match_info["id"])
    async with db(request) as session:
        shown = await service.report(
            session=session, caller=principal(request), audit=recorder(request), report_id=report_id
        )
    record = shown.record
    caller = principal(request)
    specialty = str(record.get("request", {}).get("specialty", ""))
    return render(
        request,
        "reports/detail.html",
        summary=shown.summary,
        record=record,
        addenda=shown.addenda,
        measurements=measurement_rows(record.get("measurements") or {}),
        may_amend=caller.role is Role.SPECIALIST and specialty in caller.specialties,
        may_acknowledge=caller.role is Role.GP,
        acknowledged_now=request.query.get("acknowledged") == "1",
    )


@allow(Role.GP, page=True)
async def acknowledge(request: web.Request) -> web.StreamResponse:
    """POST /reports/{id}/acknowledge: the clinic confirms it has read the report (303 back)."""
    report_id = int(request.match_info["id"])
    async with db(request) as session:
        await service.acknowledge(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            report_id=report_id,
        )
    raise web.HTTPSeeOther(f"/reports/{report_id}?acknowledged=1")


@allow(Role.GP, Role.SPECIALIST, Role.ADMIN, page=True)
async def verify_form(request: web.Request) -> web.StreamResponse:
    """GET /reports/verify: upload a signed report's PDF to check it."""
    return render(request, "reports/verify.html", result=None, error="", filename="")


@allow(Role.GP, Role.SPECIALIST, Role.ADMIN, page=True)
async def verify(request: web.Request) -> web.StreamResponse:
    """POST /reports/verify (multipart, field `pdf`): is the signature valid, who signed, when."""
    form = await posted(request)
    upload = form.get("pdf")
    if not isinstance(upload, web.FileField):
        return render(
            request,
            "reports/verify.html",
            status=422,
            result=None,
            error="Choose the report's PDF file to check.",
            filename="",
        )
    data = upload.file.read(VERIFY_MAX_BYTES + 1)
    if len(data) > VERIFY_MAX_BYTES:
        raise MalformedInput(f"The file is larger than {VERIFY_MAX_BYTES // (1024 * 1024)} MiB.")
    if not data:
        return render(
            request,
            "reports/verify.html",
            status=422,
            result=None,
            error="The chosen file is empty.",
            filename=upload.filename,
        )
    result = await service.verify_upload(signing=request.app[keys.SIGNING], pdf=data)
    return render(
        request,
        "reports/verify.html",
        result=result,
        signed_at=_moment(result.signed_at),
        error="",
        filename=upload.filename,
    )


def _moment(text: str | None) -> datetime | None:
    """An ISO 8601 time of a record ('…Z'), None when absent or not a time."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
