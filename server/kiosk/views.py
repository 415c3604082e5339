"""Kiosk API: parse, call the kiosk's services, respond."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server import keys
from server.context import db, principal, recorder
from server.endpoint import api, json_response, read_body
from server.identity import Role
from server.kiosk import enrolment
from server.kiosk.schemas import EnrolmentIn, EnrolmentOut

# Enrolment


@api(
    summary="A one-time enrolment code for a kiosk device (open /kiosk?enrol=<code> on it)",
    tag="kiosk",
    body=EnrolmentIn,
    response=EnrolmentOut,
    status=201,
    roles=(Role.ADMIN,),
)
async def create_enrolment(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/enrolments."""
    body = await read_body(request, EnrolmentIn)
    minutes = request.app[keys.SETTINGS].kiosk_enrolment_minutes
    async with db(request) as session:
        code, expires_at = await enrolment.create_code(
            session=session,
            audit=recorder(request),
            caller=principal(request),
            device=body.device,
            lifetime=timedelta(minutes=minutes),
        )
    return json_response(EnrolmentOut(code=code, expires_at=expires_at), status=201)
