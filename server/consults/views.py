"""Consults API: the on-duty toggle (GET/PUT /api/v1/duty)."""

from __future__ import annotations

from aiohttp import web

from server.consults import duty
from server.consults.schemas import DutyIn, DutyOut
from server.context import db, principal, recorder
from server.endpoint import api, json_response, read_body
from server.identity import Role


def _out(found: duty.DutyState) -> DutyOut:
    return DutyOut(on_duty=found.on_duty, specialties=list(found.specialties))


@api(
    summary="Whether you are on duty (taking consults and escalations), for which specialties",
    tag="consults",
    response=DutyOut,
    roles=(Role.SPECIALIST,),
)
async def get_duty(request: web.Request) -> web.Response:
    """GET /api/v1/duty."""
    async with db(request) as session:
        found = await duty.state(session=session, caller=principal(request))
    return json_response(_out(found))


@api(
    summary="Go on or off duty",
    tag="consults",
    body=DutyIn,
    response=DutyOut,
    roles=(Role.SPECIALIST,),
)
async def put_duty(request: web.Request) -> web.Response:
    """PUT /api/v1/duty."""
    body = await read_body(request, DutyIn)
    async with db(request) as session:
        found = await duty.set_on_duty(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            on_duty=body.on_duty,
        )
    return json_response(_out(found))
