"""Patients API."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.accounts.models import Role
from server.endpoint import api, json_response, read_body, read_query
from server.patients import lookup, service
from server.patients.schemas import PatientIn, PatientOut, PatientQuery
from server.requests import actor, db, principal


@api(
    summary="Register a patient in your clinic",
    tag="patients",
    body=PatientIn,
    response=PatientOut,
    status=201,
    roles=[Role.GP],
)
async def create_patient(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/patients."""
    body = await read_body(request, PatientIn)
    async with db(request) as session, session.begin():
        patient = await service.create(
            session=session,
            secret=request.app[keys.SECRET],
            caller=principal(request),
            actor=actor(request),
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
    async with db(request) as session, session.begin():
        rows = await service.search(
            session=session,
            secret=request.app[keys.SECRET],
            caller=principal(request),
            actor=actor(request),
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
