"""Links between archived studies and a clinic's registered patients."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.archive.models import Study
from server.archive.service import visible_studies
from server.audit.service import FAILURE, Recorder
from server.errors import NotFound
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


async def unlink_patient(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    patient: Patient,
    study_uid: str,
) -> Study:
    """Undo a wrong link: the study stays in the archive, no longer shown as the patient's.

    The caller has seen the patient; a study not linked to them is NotFound. Audited as
    study.patient_unlink either way.
    """
    study = await session.scalar(
        select(Study).where(
            visible_studies(caller),
            Study.org_id == patient.org_id,
            Study.study_uid == study_uid,
            Study.linked_patient_id == patient.id,
        )
    )
    if study is None:
        audit.record_apart(  # kept although the caller's 404 rolls its transaction back
            session,
            action="study.patient_unlink",
            outcome=FAILURE,
            object_type="study",
            object_id=study_uid,
            details={"patient_id": patient.id},
        )
        raise NotFound(f"No study {study_uid[:64]} is linked to this patient.")
    study.linked_patient_id = None
    await audit.record(
        session,
        action="study.patient_unlink",
        object_type="study",
        object_id=study.study_uid,
        org_id=study.org_id,
        details={"patient_id": patient.id},
    )
    return study


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
