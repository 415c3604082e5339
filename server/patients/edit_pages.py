"""Corrections by the patient's clinic: the demographics, and studies linked by mistake.

Both are service actions that audit themselves (patient.update with the values
before and after, study.patient_unlink); nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from dicom_tools.uids import is_valid_uid
from server.access import allow
from server.archive import links
from server.context import db, principal, recorder
from server.errors import Conflict, DomainError, NotFound
from server.forms import read_form
from server.identity import Role
from server.patients import lookup
from server.patients import service as patients
from server.patients.display import SEXES, PatientView, patient_view
from server.patients.models import Patient
from server.patients.pages import FIELDS, validate_form
from server.templates import render

_LABELS = {
    "family": "Family name",
    "given": "Given name",
    "birth_date": "Date of birth",
    "sex": "Sex",
    "identifier": "Identifier",
}


def _more_names(patient: Patient) -> list[str]:
    """The PN components after the given name, which the form does not show."""
    return patient.name.split("=", 1)[0].split("^")[2:]


def _values(view: PatientView, patient: Patient) -> dict[str, str]:
    return {
        "family": view.family,
        "given": view.given,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "identifier": patient.identifier,
    }


def _edit_page(
    request: web.Request,
    *,
    patient: Patient,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    form_error: str = "",
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "patients/edit.html",
        status=status,
        patient=patient_view(patient),
        values=values,
        errors=errors,
        form_error=form_error,
        labels=_LABELS,
        sexes=SEXES,
    )


@allow(Role.GP, page=True)
async def patient_edit_form(request: web.Request) -> web.StreamResponse:
    """GET /patients/{id}/edit: the patient's details, to correct."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    return _edit_page(
        request, patient=patient, values=_values(patient_view(patient), patient), errors={}
    )


@allow(Role.GP, page=True)
async def patient_edit(request: web.Request) -> web.StreamResponse:
    """POST /patients/{id}/edit: save the corrections, or show the form again with the errors."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    form = await read_form(request)
    values = {field: form.text(field, limit=200) for field in FIELDS}
    corrected, errors = validate_form(values, more_names=_more_names(patient))
    if corrected is None:
        return _edit_page(request, patient=patient, values=values, errors=errors, status=422)
    try:
        async with db(request) as session:
            await patients.update(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                patient_id=patient.id,
                changes=corrected.model_dump(),
            )
    except DomainError as error:
        return _edit_page(
            request,
            patient=patient,
            values=values,
            errors={"identifier": error.message} if isinstance(error, Conflict) else {},
            form_error=error.message,
            status=error.status,
        )
    raise web.HTTPSeeOther(f"/patients/{patient.id}?updated=1")


@allow(Role.GP, page=True)
async def study_unlink(request: web.Request) -> web.StreamResponse:
    """POST /patients/{id}/studies/{study}/unlink: the study stays in the archive, unlinked."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    study_uid = request.match_info["study"]
    if not is_valid_uid(study_uid):
        raise NotFound(f"No study {study_uid[:64]} is linked to this patient.")
    async with db(request) as session:
        await links.unlink_patient(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            patient=patient,
            study_uid=study_uid,
        )
    raise web.HTTPSeeOther(f"/patients/{patient.id}?unlinked={study_uid}")


@allow(Role.GP, page=True)
async def study_relink(request: web.Request) -> web.StreamResponse:
    """POST /patients/{id}/studies/{study}/link: undo an unlink (audited study.patient_link)."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    study_uid = request.match_info["study"]
    async with db(request) as session:
        linked = await links.link_patient(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            patient=patient,
            study_uids=[study_uid],
            source="relink",
            confirmed=True,  # undoing an unlink: the GP links it again knowingly
        )
    if not linked.linked:
        raise NotFound(f"No study {study_uid[:64]} in your organisation.")
    raise web.HTTPSeeOther(f"/patients/{patient.id}?relinked=1")
