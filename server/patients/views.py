"""Patients API."""

from __future__ import annotations

from aiohttp import web

from server.context import db, principal, recorder
from server.endpoint import api, json_response, read_body, read_query
from server.identity import Role
from server.patients import lookup, service
from server.patients.schemas import PatientIn, PatientOut, PatientPatch, PatientQuery


@api(
    summary="Register a patient in your clinic",
    tag="patients",
    body=PatientIn,
    response=PatientOut,
    status=201,
    errors=[409],
    roles=[Role.GP],
)
async def create_patient(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/patients."""
    body = await read_body(request, PatientIn)
    async with db(request) as session:
        patient = await service.create(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            **body.model_dump(),
        )
    return json_response(PatientOut.model_validate(patient), status=201)


@api(
    summary="Search your organisation's patients",
    tag="patients",
    query=PatientQuery,
    response=list[PatientOut],
    roles=[Role.GP, Role.ADMIN],
)
async def list_patients(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/patients?q=."""
    query = read_query(request, PatientQuery)
    async with db(request) as session:
        rows = await service.search(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            **query.model_dump(),
        )
    return json_response([PatientOut.model_validate(p) for p in rows])


@api(
    summary="One patient",
    tag="patients",
    response=PatientOut,
    roles=[Role.GP, Role.ADMIN, Role.SPECIALIST],
)
async def get_patient(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/patients/{id}."""
    patient = await lookup.visible_patient(request, int(request.match_info["id"]))
    return json_response(PatientOut.model_validate(patient))


@api(
    summary="Correct a patient's demographics (any of name, birth_date, sex, identifier)",
    tag="patients",
    body=PatientPatch,
    response=PatientOut,
    roles=[Role.GP],
    errors=[409],
)
async def update_patient(request: web.Request) -> web.StreamResponse:
    """PATCH /api/v1/patients/{id}: 409 when the identifier is another patient's."""
    body = await read_body(request, PatientPatch)
    async with db(request) as session:
        patient = await service.update(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            patient_id=int(request.match_info["id"]),
            changes=body.changes(),
        )
    return json_response(PatientOut.model_validate(patient))
