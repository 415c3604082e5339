"""Links between archived studies and a clinic's registered patients."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.archive.models import Study
from server.archive.queries import visible_studies
from server.audit.service import FAILURE, Recorder
from server.identity import Principal
from server.patients.models import Patient


async def link_patient(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    patient: Patient,
    study_uids: Iterable[str],
    source: str,
) -> list[str]:
    """Link the caller's visible studies to one of the clinic's patients (audited each)."""
    studies = (
        await session.scalars(
            select(Study)
            .where(
                visible_studies(caller),
                Study.org_id == patient.org_id,
                Study.study_uid.in_(sorted(set(study_uids))),
            )
            .order_by(Study.study_uid)
        )
    ).all()
    for study in studies:
        study.linked_patient_id = patient.id
        await audit.record(
            session,
            action="study.patient_link",
            object_type="study",
            object_id=study.study_uid,
            details={"patient_id": patient.id, "source": source},
        )
    return [study.study_uid for study in studies]


async def studies_of_patient(
    *, session: AsyncSession, caller: Principal, patient_id: int
) -> Sequence[Study]:
    """The visible studies linked to a patient, newest first."""
    return (
        await session.scalars(
            select(Study)
            .where(visible_studies(caller), Study.linked_patient_id == patient_id)
            .order_by(Study.study_date.desc(), Study.id.desc())
        )
    ).all()


async def link_by_identifier(
    *, session: AsyncSession, audit: Recorder, org_id: int, study_uids: Iterable[str], source: str
) -> list[str]:
    """Link newly stored, unlinked studies to the clinic's patient whose identifier they carry.

    Whatever the route (DIMSE, STOW-RS, upload), a study whose Patient ID is a registered
    patient's identifier in the same organisation is linked, unless its Patient's Birth
    Date contradicts the registration: that is audited as a refused link for a person to
    resolve, never linked silently.
    """
    rows = await session.execute(
        select(Study, Patient)
        .join(Patient, and_(Patient.org_id == Study.org_id, Patient.identifier == Study.patient_id))
        .where(
            Study.org_id == org_id,
            Study.study_uid.in_(sorted(set(study_uids))),
            Study.linked_patient_id.is_(None),
        )
        .order_by(Study.study_uid)
    )
    linked = []
    for study, patient in rows:
        born = patient.birth_date.strftime("%Y%m%d")
        details = {"patient_id": patient.id, "source": source, "by": "identifier"}
        if study.patient_birth_date and study.patient_birth_date != born:
            await audit.record(
                session,
                action="study.patient_link",
                outcome=FAILURE,
                object_type="study",
                object_id=study.study_uid,
                org_id=org_id,
                details={**details, "reason": "birth date differs from the registration"},
            )
            continue
        study.linked_patient_id = patient.id
        await audit.record(
            session,
            action="study.patient_link",
            object_type="study",
            object_id=study.study_uid,
            org_id=org_id,
            details=details,
        )
        linked.append(study.study_uid)
    return linked
