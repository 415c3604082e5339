"""Links between archived studies and a clinic's registered patients."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.archive.models import Study
from server.archive.queries import visible_studies
from server.audit.service import FAILURE, Recorder
from server.errors import NotFound
from server.identity import Principal
from server.patients.models import Patient


@dataclass(frozen=True, slots=True)
class Difference:
    """One patient attribute on which a study's files and the registered patient disagree."""

    attribute: str  # DICOM keyword: PatientName, PatientID, PatientBirthDate
    in_files: str
    registered: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A study whose files name someone other than the patient it is to be linked to."""

    study_uid: str
    differences: tuple[Difference, ...]


@dataclass(frozen=True, slots=True)
class LinkResult:
    """Studies linked now, and those left unlinked until someone confirms their differences."""

    linked: list[str]
    mismatches: list[Mismatch]


def _name_parts(pn: str) -> tuple[str, str]:
    """(family, first given name) of a DICOM PN, case-folded, for comparing people."""
    family, _, rest = pn.split("=", 1)[0].partition("^")
    given = rest.split("^", 1)[0].split()
    return family.strip().casefold(), given[0].casefold() if given else ""


def differences(study: Study, patient: Patient) -> tuple[Difference, ...]:
    """Where a study's patient attributes contradict a registered patient (absent ones don't)."""
    found = []
    if study.patient_id and study.patient_id != patient.identifier:
        found.append(Difference("PatientID", study.patient_id, patient.identifier))
    born = patient.birth_date.strftime("%Y%m%d")
    if study.patient_birth_date and study.patient_birth_date != born:
        found.append(Difference("PatientBirthDate", study.patient_birth_date, born))
    if study.patient_name and _name_parts(study.patient_name) != _name_parts(patient.name):
        found.append(Difference("PatientName", study.patient_name, patient.name))
    return tuple(found)


async def link_patient(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    patient: Patient,
    study_uids: Iterable[str],
    source: str,
    confirmed: bool = False,
) -> LinkResult:
    """Link the caller's visible studies to one of the clinic's patients (audited each).

    A study whose files name another person (PatientName, PatientID or PatientBirthDate
    contradict the registration) is linked only when the caller confirmed it: otherwise
    it is returned as a mismatch, unlinked. A confirmed link's audit event names the
    differences, and its actor is who confirmed them.
    """
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
    result = LinkResult(linked=[], mismatches=[])
    for study in studies:
        if study.linked_patient_id == patient.id:
            result.linked.append(study.study_uid)  # already (linked by its identifier)
            continue
        found = differences(study, patient)
        if found and not confirmed:
            result.mismatches.append(Mismatch(study.study_uid, found))
            continue
        study.linked_patient_id = patient.id
        details: dict[str, object] = {"patient_id": patient.id, "source": source}
        if found:
            details["confirmed_differences"] = [asdict(d) for d in found]
        await audit.record(
            session,
            action="study.patient_link",
            object_type="study",
            object_id=study.study_uid,
            details=details,
        )
        result.linked.append(study.study_uid)
    return result


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


async def link_by_identifier(
    *, session: AsyncSession, audit: Recorder, org_id: int, study_uids: Iterable[str], source: str
) -> list[str]:
    """Link newly stored, unlinked studies to the clinic's patient whose identifier they carry.

    Whatever the route (DIMSE, STOW-RS, upload), a study whose Patient ID is a registered
    patient's identifier in the same organisation is linked, unless its name or birth
    date contradicts the registration: that is audited as a refused link for a person to
    resolve, never linked silently (see `differences`).
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
        details: dict[str, object] = {
            "patient_id": patient.id,
            "source": source,
            "by": "identifier",
        }
        found = differences(study, patient)
        if found:
            await audit.record(
                session,
                action="study.patient_link",
                outcome=FAILURE,
                object_type="study",
                object_id=study.study_uid,
                org_id=org_id,
                details={
                    **details,
                    "reason": "the files' name or birth date differ from the registration",
                    "differences": [asdict(d) for d in found],
                },
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
