"""Reports API: sign a held request's draft, read, download, FHIR, addenda, acknowledge, verify."""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import hdrs, web

from server import keys
from server.accounts.sign_in import confirm_password
from server.context import client_addr, db, principal, recorder
from server.endpoint import api, json_response, read_body, read_query
from server.errors import NotAuthenticated, NotFound, PayloadTooLarge, UnsupportedMediaType
from server.identity import Role
from server.reports import service
from server.reports.schemas import (
    AcknowledgedOut,
    AddendumIn,
    CoveredInstance,
    ReportRecord,
    ReportsQuery,
    ReportSummaryOut,
    SignedOut,
    SignIn,
    VerificationOut,
)
from server.reports.verification import Verification

MAX_VERIFY_BYTES = 50 * 1024 * 1024
READERS = (Role.GP, Role.SPECIALIST)


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"No such id {raw[:20]}.")
    return int(raw)


async def _confirmed(request: web.Request, password: str) -> None:
    """Raise NotAuthenticated unless the password is the caller's (its check is committed)."""
    settings = request.app[keys.SETTINGS]
    async with db(request) as session:
        confirmed = await confirm_password(
            session=session,
            audit=recorder(request),
            caller=principal(request),
            password=password,
            client_addr=client_addr(request),
            max_failures=settings.login_max_failures,
            failure_window=timedelta(minutes=settings.login_failure_window_minutes),
        )
    if not confirmed:
        raise NotAuthenticated("That password is not right; nothing was signed.")


async def _filed(request: web.Request, signed: service.Signed) -> None:
    """Store the signed PDF and its SR into the study (after the signature is committed)."""
    await service.file_in_study(
        archive=request.app[keys.ARCHIVE],
        sessions=request.app[keys.SESSIONMAKER],
        audit=recorder(request),
        report_id=signed.report.id,
    )


def _signed_out(signed: service.Signed) -> web.Response:
    record = signed.record
    out = SignedOut(
        report_id=signed.report.id,
        signed_at=signed.report.signed_at,
        signer=record["signer"]["username"],
        instances=[CoveredInstance(**i) for i in record["instances"]],
        amends=record["amends"],
    )
    response = json_response(out, status=201)
    response.headers[hdrs.LOCATION] = f"/api/v1/reports/{signed.report.id}"
    return response


@api(
    summary="Sign the draft of a request you hold, with your password "
    "(PAdES PDF, filed in the study as Encapsulated PDF and SR)",
    tag="reports",
    body=SignIn,
    response=SignedOut,
    status=201,
    errors=(409, 429),
    roles=(Role.SPECIALIST,),
)
async def sign(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/report/sign."""
    request_id = _id(request)
    body = await read_body(request, SignIn)
    await _confirmed(request, body.password)
    async with db(request) as session:
        signed = await service.sign(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            signing=request.app[keys.SIGNING],
            request_id=request_id,
        )
    await _filed(request, signed)
    return _signed_out(signed)


@api(
    summary="The PDF the draft would be signed as, unsigned (holder only)",
    tag="reports",
    response=bytes,
    media_type="application/pdf",
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def preview(request: web.Request) -> web.Response:
    """GET /api/v1/reading-requests/{id}/report/preview."""
    request_id = _id(request)
    async with db(request) as session:
        pdf = await service.draft_preview(
            session=session, caller=principal(request), request_id=request_id
        )
    return _pdf(pdf, f"draft-{request_id}.pdf", inline=True)


def _pdf(body: bytes, filename: str, *, inline: bool = False) -> web.Response:
    response = web.Response(body=body, content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response.headers[hdrs.CONTENT_DISPOSITION] = f'{disposition}; filename="{filename}"'
    response.headers[hdrs.CACHE_CONTROL] = "private, no-store"
    return response


@api(
    summary="The reports you may read (GP: your clinic's; specialist: your specialties'), "
    "newest first",
    tag="reports",
    query=ReportsQuery,
    response=list[ReportSummaryOut],
    roles=READERS,
)
async def list_reports(request: web.Request) -> web.Response:
    """GET /api/v1/reports."""
    query = read_query(request, ReportsQuery)
    async with db(request) as session:
        found = await service.summaries(
            session=session, caller=principal(request), limit=query.limit
        )
    return json_response([ReportSummaryOut.model_validate(s) for s in found])


@api(
    summary="A signed report's JSON record: exactly what its signature covers",
    tag="reports",
    response=ReportRecord,
    roles=READERS,
)
async def get_report(request: web.Request) -> web.Response:
    """GET /api/v1/reports/{id}."""
    report_id = _id(request)
    async with db(request) as session:
        shown = await service.report(
            session=session, caller=principal(request), audit=recorder(request), report_id=report_id
        )
    response = web.json_response(shown.record, dumps=lambda v: json.dumps(v, ensure_ascii=False))
    response.headers[hdrs.CACHE_CONTROL] = "private, no-store"
    return response


@api(
    summary="A signed report as PDF (PAdES signature; the JSON record attached)",
    tag="reports",
    response=bytes,
    media_type="application/pdf",
    roles=READERS,
)
async def get_pdf(request: web.Request) -> web.Response:
    """GET /api/v1/reports/{id}.pdf."""
    report_id = _id(request)
    async with db(request) as session:
        body = await service.pdf(
            session=session, caller=principal(request), audit=recorder(request), report_id=report_id
        )
    return _pdf(body, f"report-{report_id}.pdf")


@api(
    summary="A signed report as a FHIR R4 DiagnosticReport",
    tag="reports",
    response=ReportRecord,
    media_type="application/fhir+json",
    roles=READERS,
)
async def get_fhir(request: web.Request) -> web.Response:
    """GET /api/v1/reports/{id}/fhir."""
    report_id = _id(request)
    base = request.app[keys.SETTINGS].public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    async with db(request) as session:
        resource = await service.fhir(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            report_id=report_id,
            base_url=base,
        )
    return web.Response(
        text=json.dumps(resource, ensure_ascii=False),
        content_type="application/fhir+json",
        headers={hdrs.CACHE_CONTROL: "private, no-store"},
    )


@api(
    summary="Sign an addendum to a report (a reader of its specialty, with their password)",
    tag="reports",
    body=AddendumIn,
    response=SignedOut,
    status=201,
    errors=(429,),
    roles=(Role.SPECIALIST,),
)
async def add_addendum(request: web.Request) -> web.Response:
    """POST /api/v1/reports/{id}/addenda."""
    report_id = _id(request)
    body = await read_body(request, AddendumIn)
    await _confirmed(request, body.password)
    async with db(request) as session:
        signed = await service.add_addendum(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            signing=request.app[keys.SIGNING],
            report_id=report_id,
            text=body.text,
        )
    await _filed(request, signed)
    return _signed_out(signed)


@api(
    summary="Acknowledge receipt of a report (the requesting clinic's GP; recorded once)",
    tag="reports",
    response=AcknowledgedOut,
    roles=(Role.GP,),
)
async def acknowledge(request: web.Request) -> web.Response:
    """POST /api/v1/reports/{id}/acknowledge."""
    report_id = _id(request)
    async with db(request) as session:
        summary = await service.acknowledge(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            report_id=report_id,
        )
    assert summary.acknowledged_at is not None
    return json_response(
        AcknowledgedOut(
            report_id=report_id,
            acknowledged_at=summary.acknowledged_at,
            acknowledged_by=summary.acknowledged_by or "",
        )
    )


@api(
    summary="Verify a report PDF: signer, time, covered instances, and whether anything changed",
    tag="reports",
    response=VerificationOut,
    raw_body=("application/pdf",),
)
async def verify(request: web.Request) -> web.Response:
    """POST /api/v1/reports/verify (the PDF as the body)."""
    if request.content_type != "application/pdf":
        raise UnsupportedMediaType(
            "Send the report as the body, with Content-Type application/pdf."
        )
    body = await read_limited(request, MAX_VERIFY_BYTES)
    found = await service.verify_upload(signing=request.app[keys.SIGNING], pdf=body)
    return json_response(verification_out(found))


def verification_out(found: Verification) -> VerificationOut:
    """The API body of a verification."""
    return VerificationOut(
        valid=found.valid,
        signer=found.signer_username,
        signer_name=found.signer,
        signed_at=found.signed_at,
        instances=found.instances,
        problems=found.problems,
        trust=found.trust,
    )


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing one larger than limit."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"A report PDF is at most {limit // (1024 * 1024)} MiB.")
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"A report PDF is at most {limit // (1024 * 1024)} MiB.")
        chunks.append(chunk)
    return b"".join(chunks)
