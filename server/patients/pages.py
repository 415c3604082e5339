"""Patient pages for GPs: search, register, details; scoping and audit stay in the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dicom_tools.uids import is_valid_uid
from server.access import allow
from server.archive import links
from server.context import db, principal, recorder
from server.errors import Conflict, DomainError
from server.forms import read_form
from server.identity import Role
from server.patients import lookup
from server.patients import service as patients
from server.patients.display import SEXES, patient_view
from server.patients.schemas import PatientIn
from server.reports import service as reports
from server.templates import render

FIELDS = ("family", "given", "birth_date", "sex", "identifier")
_MISSING = {
    "birth_date": "Enter the date of birth.",
    "sex": "Choose one of the options.",
    "identifier": "Enter the identifier.",
}
_HINTS = {
    "name": "Names may not contain \\ or = and are at most 200 characters together.",
    "birth_date": "Enter the birth date as YYYY-MM-DD.",
    "sex": "Choose one of the options.",
    "identifier": "Use 1 to 64 characters, without \\ or control characters.",
}
SEARCH_LIMIT = 100


@allow(Role.GP, page=True)
async def patient_list(request: web.Request) -> web.StreamResponse:
    """GET /patients?q=: the clinic's patients, searched by name or identifier."""
    q = request.query.get("q", "").strip()
    notice = ""
    if len(q) > 64:
        q, notice = q[:64], "The search was shortened to 64 characters."
    async with db(request) as session:
        rows = await patients.search(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            q=q,
            limit=SEARCH_LIMIT,
            offset=0,
        )
    return render(
        request,
        "patients/list.html",
        q=q,
        notice=notice,
        patients=[patient_view(p) for p in rows],
        limit=SEARCH_LIMIT,
    )


def _form_page(
    request: web.Request,
    *,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    form_error: str = "",
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "patients/new.html",
        status=status,
        values=values,
        errors=errors,
        form_error=form_error,
        sexes=SEXES,
        today=date.today().isoformat(),
    )


@allow(Role.GP, page=True)
async def patient_form(request: web.Request) -> web.StreamResponse:
    """GET /patients/new: the registration form."""
    return _form_page(request, values={}, errors={})


def _message(error: ErrorDetails, values: Mapping[str, str]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in _MISSING and not values.get(field):
        return _MISSING[field]
    if error["type"] == "value_error":
        text = error["msg"].removeprefix("Value error, ")
        return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
    return _HINTS.get(field, error["msg"])


def validate_form(
    values: Mapping[str, str], *, more_names: Sequence[str] = ()
) -> tuple[PatientIn | None, dict[str, str]]:
    """The patient of a filled-in form, or the message for each field that is wrong.

    `more_names` are the PN components after the given name (middle name, prefix,
    suffix) that the form does not show and that a correction keeps.
    """
    errors: dict[str, str] = {}
    family, given = values["family"], values["given"]
    if not family:
        errors["family"] = "Enter the family name."
    for field in ("family", "given"):
        if "^" in values[field]:
            errors[field] = "Names may not contain ^."
    data: dict[str, Any] = {
        "name": "^".join([family, given, *more_names]).rstrip("^"),
        "birth_date": values["birth_date"] or None,
        "sex": values["sex"] or None,
        "identifier": values["identifier"],
    }
    try:
        patient = PatientIn.model_validate(data)
    except ValidationError as error:
        for detail in error.errors(include_url=False, include_input=False):
            field = str(detail["loc"][0]) if detail["loc"] else "family"
            errors.setdefault("family" if field == "name" else field, _message(detail, values))
        return None, errors
    return (None, errors) if errors else (patient, errors)


@allow(Role.GP, page=True)
async def patient_create(request: web.Request) -> web.StreamResponse:
    """POST /patients/new: register, or show the form again with what was wrong."""
    form = await read_form(request)
    values = {field: form.text(field, limit=200) for field in FIELDS}
    patient_in, errors = validate_form(values)
    if patient_in is None:
        return _form_page(request, values=values, errors=errors, status=422)
    try:
        async with db(request) as session:
            patient = await patients.create(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                **patient_in.model_dump(),
            )
    except DomainError as error:
        field_errors = {"identifier": error.message} if isinstance(error, Conflict) else {}
        return _form_page(
            request,
            values=values,
            errors=field_errors,
            form_error=error.message,
            status=error.status,
        )
    raise web.HTTPSeeOther(f"/patients/{patient.id}?registered=1")


@allow(Role.GP, page=True)
async def patient_detail(request: web.Request) -> web.StreamResponse:
    """GET /patients/{id}: one patient of the clinic (404 for anyone else's)."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    async with db(request) as session:
        studies = await links.studies_of_patient(
            session=session, caller=principal(request), patient_id=patient.id
        )
        found = await reports.summaries(
            session=session, caller=principal(request), study_uids=[s.study_uid for s in studies]
        )
    reports_of: dict[str, list[reports.Summary]] = {}
    for summary in found:
        reports_of.setdefault(summary.study_uid, []).append(summary)
    return render(
        request,
        "patients/detail.html",
        patient=patient_view(patient),
        studies=studies,
        reports_of=reports_of,
        registered=request.query.get("registered") == "1",
        updated=request.query.get("updated") == "1",
        relinked=request.query.get("relinked") == "1",
        unlinked=unlinked if is_valid_uid(unlinked := request.query.get("unlinked", "")) else "",
    )
