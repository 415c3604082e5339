"""Patients, always scoped to what the caller may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.scope import readable_organisations
from server.audit.service import DENIED, FAILURE, Recorder
from server.errors import Conflict, NotFound
from server.identity import Principal, Role
from server.patients.models import Patient
from server.patients.search import matches

PATIENT_READERS = (Role.GP, Role.KIOSK)
"""The roles that read their own organisation's patients (see `server.accounts.scope`)."""


def visible_to(caller: Principal) -> ColumnElement[bool]:
    """SQL condition: the patients this caller may see."""
    return readable_organisations(caller, Patient.org_id, roles=PATIENT_READERS)


async def create(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    name: str,
    birth_date: date,
    sex: str,
    identifier: str,
) -> Patient:
    """Register a patient in the caller's clinic; identifiers are unique within a clinic."""
    taken = await session.scalar(
        select(Patient.id).where(Patient.org_id == caller.org_id, Patient.identifier == identifier)
    )
    if taken is not None:
        raise Conflict(f"Patient identifier {identifier!r} is already registered in this clinic.")
    patient = Patient(
        org_id=caller.org_id,
        name=name,
        birth_date=birth_date,
        sex=sex,
        identifier=identifier,
        created_by=caller.user_id,
    )
    session.add(patient)
    await session.flush()
    await audit.record(
        session,
        action="patient.create",
        object_type="patient",
        object_id=patient.id,
    )
    return patient


MAX_ID = 2**63 - 1
"""The largest id a patient can have (BIGINT / SQLite INTEGER)."""


async def get(
    *, session: AsyncSession, caller: Principal, audit: Recorder, patient_id: int
) -> Patient | None:
    """A visible patient, or None; every attempt is audited, refused ones as denied."""
    # An id beyond the database's 64-bit integers names nobody (and would not bind).
    patient = await session.get(Patient, patient_id) if 0 < patient_id <= MAX_ID else None
    visible = patient is not None and bool(
        await session.scalar(select(Patient.id).where(Patient.id == patient_id, visible_to(caller)))
    )
    if visible:
        audit.record_apart(
            session, action="patient.read", object_type="patient", object_id=patient_id
        )
        return patient
    audit.record_apart(  # kept even when the caller's 404 rolls its transaction back
        session,
        action="patient.read",
        outcome=DENIED if patient else FAILURE,
        object_type="patient",
        object_id=patient_id,
        org_id=patient.org_id if patient else caller.org_id,
    )
    return None


async def search(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    q: str,
    limit: int,
    offset: int,
) -> Sequence[Patient]:
    """Visible patients with every word of q in their name, or an identifier starting with q.

    Any order and case, accents ignored; see `server.patients.search`.
    """
    query = select(Patient).where(visible_to(caller))
    condition = matches(q, Patient.name_key, Patient.identifier_key)
    if condition is not None:
        query = query.where(condition)
    rows = (
        await session.scalars(query.order_by(Patient.name, Patient.id).limit(limit).offset(offset))
    ).all()
    audit.record_apart(
        session,
        action="patient.search",
        object_type="patient",
        object_id=",".join(str(p.id) for p in rows)[:128],
        details={"q": q, "results": len(rows)},
    )
    return rows


EDITABLE = ("name", "birth_date", "sex", "identifier")
"""The demographics a clinic may correct (the organisation and the history stay)."""


async def update(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    patient_id: int,
    changes: Mapping[str, Any],
) -> Patient:
    """Correct a visible patient's demographics, audited with the values before and after.

    `changes` holds any of EDITABLE, already validated; identifiers stay unique in the
    clinic. A patient the caller may not see is NotFound (and the attempt audited).
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValueError(f"not editable: {unknown}")
    patient = await session.get(Patient, patient_id)
    visible = patient is not None and bool(
        await session.scalar(select(Patient.id).where(Patient.id == patient_id, visible_to(caller)))
    )
    if patient is None or not visible:
        audit.record_apart(
            session,
            action="patient.update",
            outcome=DENIED if patient else FAILURE,
            object_type="patient",
            object_id=patient_id,
            org_id=patient.org_id if patient else caller.org_id,
        )
        raise not_found(patient_id)
    changed = {f: v for f, v in changes.items() if getattr(patient, f) != v}
    identifier = changed.get("identifier")
    if identifier is not None:
        taken = await session.scalar(
            select(Patient.id).where(
                Patient.org_id == patient.org_id,
                Patient.identifier == identifier,
                Patient.id != patient.id,
            )
        )
        if taken is not None:
            raise Conflict(
                f"Patient identifier {identifier!r} is already registered in this clinic."
            )
    before = {f: getattr(patient, f) for f in changed}
    for field, value in changed.items():
        setattr(patient, field, value)
    await session.flush()
    await audit.record(
        session,
        action="patient.update",
        object_type="patient",
        object_id=patient.id,
        org_id=patient.org_id,
        details={"before": before, "after": changed},
    )
    return patient


def not_found(patient_id: int) -> NotFound:
    """The error for a patient that does not exist or is not visible."""
    return NotFound(f"No patient {patient_id} in your organisation.")


async def recent(
    *, session: AsyncSession, caller: Principal, audit: Recorder, limit: int
) -> Sequence[Patient]:
    """The most recently registered visible patients, newest first; audited as a listing."""
    rows = (
        await session.scalars(
            select(Patient)
            .where(visible_to(caller))
            .order_by(Patient.created_at.desc(), Patient.id.desc())
            .limit(limit)
        )
    ).all()
    audit.record_apart(
        session,
        action="patient.list",
        object_type="patient",
        object_id=",".join(str(p.id) for p in rows)[:128],
        details={"order": "recent", "results": len(rows)},
    )
    return rows
