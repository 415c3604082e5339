"""Signed reports: signing a held request's draft, addenda, reading, acknowledging, verifying.

A signature covers the report's canonical JSON record (text, measurements, signer,
time, request, patient and study, and the SHA-256 of every instance of the study at
that moment), attached to the PDF it signs. A signed report is never changed: a
correction is an addendum, signed in its own right, that names the report it corrects.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.uid import generate_uid
from sqlalchemy import ColumnElement, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_tools.report_objects import encapsulated_pdf, report_sr, to_part10
from server.accounts.models import Organisation, User
from server.archive.models import Instance, Series, Study
from server.audit.service import Recorder
from server.db import after_commit, transaction, utcnow
from server.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from server.events import channels
from server.events.bus import EventBus
from server.identity import Principal, Role
from server.reading import service as reading
from server.reading.models import ReadingRequest, ReportDraft, Status
from server.reports import webhooks
from server.reports.fhir import diagnostic_report
from server.reports.models import SignedReport
from server.reports.record import RECORD_FORMAT, canonical_json
from server.reports.signing import Signing, preview
from server.reports.verification import Verification

if TYPE_CHECKING:
    from server.archive.service import Archive

log = logging.getLogger(__name__)
REPORT = "report"
ADDENDUM = "addendum"
ADDENDUM_MAX = 20_000


@dataclass(frozen=True, slots=True)
class Summary:
    """A signed report (or addendum) as lists show it."""

    report_id: int
    request_id: int
    kind: str
    amends: int | None
    signed_at: datetime
    signer: str
    study_uid: str
    patient_name: str
    specialty: str
    priority: str
    impression: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    addenda: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Shown:
    """A report opened by a reader: its summary, its signed record and its addenda."""

    summary: Summary
    record: dict[str, Any]
    addenda: list[Summary]


@dataclass(frozen=True, slots=True)
class Signed:
    """A report just signed: the stored row and the record its signature covers."""

    report: SignedReport
    record: dict[str, Any]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def readable_reports(caller: Principal) -> ColumnElement[bool]:
    """SQL condition on SignedReport joined to its ReadingRequest: what the caller may read.

    The requesting clinic's GPs, and the readers of the request's specialty.
    """
    if caller.role is Role.GP:
        return SignedReport.org_id == caller.org_id
    if caller.role is Role.SPECIALIST and caller.specialties:
        return ReadingRequest.specialty.in_(caller.specialties)
    return false()


# The record ------------------------------------------------------------------------


async def _record(
    session: AsyncSession,
    *,
    request: ReadingRequest,
    caller: Principal,
    report_id: int,
    kind: str,
    amends: int | None,
    signed_at: datetime,
    findings: str,
    impression: str,
    text: str,
    measurements: dict[str, Any],
) -> dict[str, Any]:
    """The canonical record of a report: what its signature covers."""
    study = await session.get(Study, request.study_id)
    assert study is not None
    asker = await session.get(User, request.requested_by)
    clinic = await session.get(Organisation, request.org_id)
    modalities = sorted(
        {
            m
            for m in await session.scalars(
                select(Series.modality).where(Series.study_id == study.id)
            )
            if m
        }
    )
    instances = [
        {"sop_instance_uid": uid, "sha256": digest}
        for uid, digest in await session.execute(
            select(Instance.sop_instance_uid, Instance.sha256)
            .where(Instance.study_id == study.id)
            .order_by(Instance.sop_instance_uid)
        )
    ]
    return {
        "format": RECORD_FORMAT,
        "report_id": report_id,
        "kind": kind,
        "amends": amends,
        "request": {
            "id": request.id,
            "specialty": request.specialty,
            "priority": request.priority,
            "question": request.question,
            "requested_at": _iso(request.created_at),
            "requested_by": asker.username if asker else "",
            "clinic": clinic.name if clinic else "",
        },
        "patient": {
            "id": study.patient_id or "",
            "name": study.patient_name or "",
            "birth_date": _date(study.patient_birth_date),
            "sex": study.patient_sex or "",
        },
        "study": {
            "study_uid": study.study_uid,
            "accession_number": study.accession_number or "",
            "study_date": _date(study.study_date),
            "description": study.study_description or "",
            "modalities": modalities,
        },
        "signer": {
            "username": caller.username,
            "display_name": caller.display_name,
            "organisation": caller.org_name,
            "specialties": sorted(caller.specialties),
        },
        "signed_at": _iso(signed_at),
        "findings": findings,
        "impression": impression,
        "text": text,
        "measurements": measurements,
        "instances": instances,
    }


def _date(value: str | None) -> str:
    """A DICOM DA (YYYYMMDD) as YYYY-MM-DD; "" when absent or not a date."""
    if not value or len(value) != 8 or not value.isdigit():
        return ""
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


# Signing ----------------------------------------------------------------------------


async def sign(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    signing: Signing,
    request_id: int,
) -> Signed:
    """Sign the draft of a request the caller holds; the request is then done, for good.

    The caller's password has been confirmed already (accounts.sign_in.confirm_password).
    """
    current = await reading.held(session=session, caller=caller, request_id=request_id)
    draft = await session.get(ReportDraft, request_id)
    if draft is None or not (draft.findings.strip() or draft.impression.strip()):
        raise InvalidInput("Write the findings or the impression before signing.")
    signed_at = utcnow().replace(microsecond=0)
    won = await session.scalar(
        update(ReadingRequest)
        .where(
            ReadingRequest.id == request_id,
            ReadingRequest.status == Status.CLAIMED,
            ReadingRequest.claimed_by == caller.user_id,
            ReadingRequest.lease_expires_at >= signed_at,
        )
        .values(status=Status.SIGNED.value, signed_at=signed_at, lease_expires_at=None)
        .returning(ReadingRequest.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        raise Conflict(f"Reading request {request_id} was signed or taken meanwhile.")
    request = current.request
    signed = await _signed(
        session,
        caller=caller,
        signing=signing,
        request=request,
        kind=REPORT,
        amends=None,
        signed_at=signed_at,
        findings=draft.findings,
        impression=draft.impression,
        text="",
        measurements=dict(draft.measurements),
    )
    await audit.record(
        session,
        action="report.sign",
        object_type="report",
        object_id=signed.report.id,
        org_id=request.org_id,
        details={
            "request": request_id,
            "study": request.study_uid,
            "instances": len(signed.record["instances"]),
            "pdf_sha256": signed.report.pdf_sha256,
        },
    )
    done = await reading.item(session=session, caller=caller, request_id=request_id)
    reading.announce(session, bus, "reading.signed", done)
    _announce_report(session, bus, "report.signed", signed)
    await webhooks.enqueue(session=session, signed=signed, kind="report.signed")
    return signed


async def _signed(
    session: AsyncSession,
    *,
    caller: Principal,
    signing: Signing,
    request: ReadingRequest,
    kind: str,
    amends: int | None,
    signed_at: datetime,
    findings: str,
    impression: str,
    text: str,
    measurements: dict[str, Any],
) -> Signed:
    identity = await signing.identity(session=session, caller=caller)
    report = SignedReport(
        request_id=request.id,
        amends_id=amends,
        kind=kind,
        org_id=request.org_id,
        study_id=request.study_id,
        signer_id=caller.user_id,
        signed_at=signed_at,
        record="",
        pdf=b"",
        pdf_sha256="",
    )
    session.add(report)
    await session.flush()
    record = await _record(
        session,
        request=request,
        caller=caller,
        report_id=report.id,
        kind=kind,
        amends=amends,
        signed_at=signed_at,
        findings=findings,
        impression=impression,
        text=text,
        measurements=measurements,
    )
    pdf = await signing.render_and_sign(record=record, identity=identity, signed_at=signed_at)
    report.record = canonical_json(record).decode("utf-8")
    report.pdf = pdf
    report.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    await session.flush()
    return Signed(report, record)


def _announce_report(session: AsyncSession, bus: EventBus, kind: str, signed: Signed) -> None:
    record = signed.record
    event = {
        "type": kind,
        "report": {
            "report_id": signed.report.id,
            "request_id": record["request"]["id"],
            "amends": record["amends"],
            "study_uid": record["study"]["study_uid"],
            "signer": record["signer"]["display_name"],
            "signed_at": record["signed_at"],
        },
    }

    async def publish() -> None:
        try:
            await bus.publish(channels.org(signed.report.org_id), event)
        except Exception:  # committed already; the clinic's list shows it on its next load
            log.warning("could not announce report %s", signed.report.id, exc_info=True)

    after_commit(session, publish)


async def add_addendum(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    signing: Signing,
    report_id: int,
    text: str,
) -> Signed:
    """Sign an addendum to a report: a reader of its specialty corrects or adds to it."""
    if caller.role is not Role.SPECIALIST:
        raise PermissionDenied("Only specialists of the report's specialty write addenda.")
    text = text.strip()
    if not text:
        raise InvalidInput("Write the addendum's text.")
    if len(text) > ADDENDUM_MAX:
        raise InvalidInput(f"An addendum is at most {ADDENDUM_MAX} characters.")
    parent, request = await _readable(session, caller, report_id)
    original = parent.amends_id or parent.id
    signed = await _signed(
        session,
        caller=caller,
        signing=signing,
        request=request,
        kind=ADDENDUM,
        amends=original,
        signed_at=utcnow().replace(microsecond=0),
        findings="",
        impression="",
        text=text,
        measurements={},
    )
    await audit.record(
        session,
        action="report.addendum",
        object_type="report",
        object_id=signed.report.id,
        org_id=request.org_id,
        details={"amends": original, "pdf_sha256": signed.report.pdf_sha256},
    )
    _announce_report(session, bus, "report.addendum", signed)
    await webhooks.enqueue(session=session, signed=signed, kind="report.addendum")
    return signed


async def _readable(
    session: AsyncSession, caller: Principal, report_id: int
) -> tuple[SignedReport, ReadingRequest]:
    row = (
        await session.execute(
            select(SignedReport, ReadingRequest)
            .join(ReadingRequest, ReadingRequest.id == SignedReport.request_id)
            .where(SignedReport.id == report_id, readable_reports(caller))
        )
    ).first()
    if row is None:
        raise NotFound(f"No report {report_id}.")
    return row[0], row[1]


# Filing in the study ---------------------------------------------------------------


async def file_in_study(
    *,
    archive: Archive,
    sessions: async_sessionmaker[AsyncSession],
    audit: Recorder,
    report_id: int,
) -> tuple[str, str] | None:
    """Store a signed report back into its study: an Encapsulated PDF and an SR.

    Their UIDs derive from the report, so filing again stores nothing twice. Returns
    (Encapsulated PDF UID, SR UID), or None when the study's files cannot be read.
    """
    async with transaction(sessions) as session:
        report = await session.get(SignedReport, report_id)
        if report is None:
            raise NotFound(f"No report {report_id}.")
        record = _loaded(report)
        rows = (
            await session.execute(
                select(
                    Instance.sop_instance_uid,
                    Instance.sop_class_uid,
                    Instance.sha256,
                    Series.series_uid,
                )
                .join(Series, Series.id == Instance.series_id)
                .where(Instance.study_id == report.study_id)
                .order_by(Instance.id)
            )
        ).all()
        pdf, org_id = report.pdf, report.org_id
    sop_classes = {uid: sop_class for uid, sop_class, _, _ in rows}
    series_uids = {uid: series for uid, _, _, series in rows}
    covered = {i["sop_instance_uid"] for i in record["instances"]}
    evidence_blob = next((digest for uid, _, digest, _ in rows if uid in covered), None)
    if evidence_blob is None:
        log.warning("report %s: none of its instances is in the study any more", report_id)
        return None
    study_uid = record["study"]["study_uid"]
    seed = [study_uid, str(report_id), report.pdf_sha256]
    pdf_uid = generate_uid(entropy_srcs=[*seed, "encapsulated-pdf"])
    sr_uid = generate_uid(entropy_srcs=[*seed, "sr"])

    def build() -> list[bytes]:
        with archive.storage.open(evidence_blob) as handle:
            evidence = pydicom.dcmread(handle, stop_before_pixels=True)
        document = encapsulated_pdf(
            pdf=pdf,
            evidence=evidence,
            record=record,
            series_uid=generate_uid(entropy_srcs=[*seed, "encapsulated-pdf-series"]),
            sop_instance_uid=pdf_uid,
            sop_classes=sop_classes,
        )
        structured = report_sr(
            evidence=evidence,
            record=record,
            series_uid=generate_uid(entropy_srcs=[*seed, "sr-series"]),
            sop_instance_uid=sr_uid,
            sop_classes=sop_classes,
            series_uids=series_uids,
        )
        return [to_part10(document), to_part10(structured)]

    items = await asyncio.to_thread(build)
    results = await archive.store(audit=audit, org_id=org_id, items=items, source="report")
    refused = [r for r in results if not r.ok]
    if refused:
        log.error("report %s could not be filed in study %s: %s", report_id, study_uid, refused)
        return None
    async with transaction(sessions) as session:
        await session.execute(
            update(SignedReport)
            .where(SignedReport.id == report_id)
            .values(encapsulated_pdf_uid=pdf_uid, sr_uid=sr_uid)
        )
    return pdf_uid, sr_uid


# Reading ---------------------------------------------------------------------------


def _loaded(report: SignedReport) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(report.record)
    return record


async def summaries(
    *,
    session: AsyncSession,
    caller: Principal,
    limit: int = 200,
    request_id: int | None = None,
    study_uids: Collection[str] | None = None,
) -> list[Summary]:
    """The reports the caller may read (of one request, or of some studies), newest first."""
    where = [readable_reports(caller)]
    if request_id is not None:
        where.append(SignedReport.request_id == request_id)
    if study_uids is not None:
        where.append(ReadingRequest.study_uid.in_(list(study_uids)))
    acknowledger = User.__table__.alias("acknowledger")
    rows = (
        await session.execute(
            select(SignedReport, ReadingRequest, Study.patient_name, acknowledger.c.username)
            .join(ReadingRequest, ReadingRequest.id == SignedReport.request_id)
            .join(Study, Study.id == SignedReport.study_id)
            .outerjoin(acknowledger, acknowledger.c.id == SignedReport.acknowledged_by)
            .where(*where)
            .order_by(SignedReport.signed_at.desc(), SignedReport.id.desc())
            .limit(limit)
        )
    ).all()
    addenda: dict[int, list[int]] = {}
    for report, *_ in rows:
        if report.amends_id is not None:
            addenda.setdefault(report.amends_id, []).append(report.id)
    return [
        _summary(report, request, patient or "", ack_by, sorted(addenda.get(report.id, [])))
        for report, request, patient, ack_by in rows
    ]


def _summary(
    report: SignedReport,
    request: ReadingRequest,
    patient_name: str,
    acknowledged_by: str | None,
    addenda: list[int],
) -> Summary:
    record = _loaded(report)
    return Summary(
        report_id=report.id,
        request_id=report.request_id,
        kind=report.kind,
        amends=report.amends_id,
        signed_at=report.signed_at,
        signer=record["signer"]["display_name"],
        study_uid=request.study_uid,
        patient_name=patient_name,
        specialty=request.specialty,
        priority=request.priority,
        impression=record["impression"] or record["text"],
        acknowledged_at=report.acknowledged_at,
        acknowledged_by=acknowledged_by,
        addenda=addenda,
    )


async def report(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    report_id: int,
    purpose: str = "read",
) -> Shown:
    """One report with its addenda (audited as a read of patient data)."""
    try:
        found, request = await _readable(session, caller, report_id)
    except NotFound:
        owner = await session.scalar(
            select(SignedReport.org_id).where(SignedReport.id == report_id)
        )
        audit.record_apart(
            session,
            action="report.read",
            outcome="denied" if owner is not None else "failure",
            object_type="report",
            object_id=report_id,
            org_id=owner if owner is not None else caller.org_id,
            details={"purpose": purpose},
        )
        raise
    audit.record_apart(
        session,
        action="report.read",
        object_type="report",
        object_id=report_id,
        org_id=found.org_id,
        details={"purpose": purpose},
    )
    original = found.amends_id or found.id
    listed = await summaries(session=session, caller=caller, request_id=request.id, limit=1000)
    by_id = {s.report_id: s for s in listed}
    addenda = sorted(
        (s for s in listed if s.amends == original and s.report_id != found.id),
        key=lambda s: s.report_id,
    )
    return Shown(by_id[found.id], _loaded(found), addenda)


async def pdf(
    *, session: AsyncSession, caller: Principal, audit: Recorder, report_id: int
) -> bytes:
    """The signed PDF of a report (audited)."""
    await report(session=session, caller=caller, audit=audit, report_id=report_id, purpose="pdf")
    found = await session.get(SignedReport, report_id)
    assert found is not None
    return found.pdf


async def fhir(
    *, session: AsyncSession, caller: Principal, audit: Recorder, report_id: int, base_url: str
) -> dict[str, Any]:
    """The report as a FHIR R4 DiagnosticReport (audited)."""
    shown = await report(
        session=session, caller=caller, audit=audit, report_id=report_id, purpose="fhir"
    )
    found = await session.get(SignedReport, report_id)
    assert found is not None
    return diagnostic_report(
        shown.record,
        report_url=f"{base_url}/api/v1/reports/{report_id}",
        pdf_url=f"{base_url}/api/v1/reports/{report_id}.pdf",
        pdf=found.pdf,
        status="appended" if shown.addenda and found.kind == REPORT else "final",
    )


async def acknowledge(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, report_id: int
) -> Summary:
    """The requesting clinic's GP confirms they received the report (once; recorded)."""
    if caller.role is not Role.GP:
        raise PermissionDenied("Only the requesting clinic's GPs acknowledge a report.")
    found, request = await _readable(session, caller, report_id)
    if found.acknowledged_at is None:
        found.acknowledged_at = utcnow()
        found.acknowledged_by = caller.user_id
        await session.flush()
        await audit.record(
            session,
            action="report.acknowledge",
            object_type="report",
            object_id=report_id,
            org_id=found.org_id,
        )
    listed = await summaries(session=session, caller=caller, request_id=request.id, limit=1000)
    return next(s for s in listed if s.report_id == report_id)


async def draft_preview(*, session: AsyncSession, caller: Principal, request_id: int) -> bytes:
    """The PDF the holder's draft would sign to, unsigned (no signature, no record attached)."""
    current = await reading.held(session=session, caller=caller, request_id=request_id)
    draft = await session.get(ReportDraft, request_id)
    record = await _record(
        session,
        request=current.request,
        caller=caller,
        report_id=0,
        kind=REPORT,
        amends=None,
        signed_at=utcnow().replace(microsecond=0),
        findings=draft.findings if draft else "",
        impression=draft.impression if draft else "",
        text="",
        measurements=dict(draft.measurements) if draft else {},
    )
    return await preview(record)


async def verify_upload(*, signing: Signing, pdf: bytes) -> Verification:
    """Verify an uploaded report PDF against this deployment's CA."""
    return await signing.verify(pdf)
