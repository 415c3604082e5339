"""Find the patient a request names, scoped to the caller and audited."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.patients import service
from server.patients.models import Patient
from server.requests import actor, db, principal


async def visible_patient(request: web.Request, patient_id: int) -> Patient:
    """The patient if the caller may see it (the read is audited); NotFound otherwise."""
    async with db(request) as session, session.begin():
        patient = await service.get(
            session=session,
            secret=request.app[keys.SECRET],
            caller=principal(request),
            actor=actor(request),
            patient_id=patient_id,
        )
    if patient is None:
        raise service.not_found(patient_id)
    return patient
