"""Find the patient a request names, scoped to the caller and audited."""

from __future__ import annotations

from aiohttp import web

from server.context import db, principal, recorder
from server.patients import service
from server.patients.models import Patient


async def visible_patient(request: web.Request, patient_id: int) -> Patient:
    """The patient if the caller may see it (the read is audited); NotFound otherwise."""
    async with db(request) as session:
        patient = await service.get(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            patient_id=patient_id,
        )
    if patient is None:
        raise service.not_found(patient_id)
    return patient
