"""The roster and follow-up API: roster shifts (admins; specialists read their own), free
follow-up slots, booking and joining (the kiosk, during the visit)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from server import keys
from server.consults import service as consults
from server.context import db, principal, recorder
from server.db import utcnow
from server.endpoint import api, json_response, read_body, read_query
from server.identity import Role
from server.kiosk import followups, roster
from server.kiosk.followup_schemas import (
    FollowUpIn,
    FollowUpOut,
    JoinOut,
    RosterQuery,
    ShiftIn,
    ShiftOut,
    SlotOut,
    SlotsOut,
    SlotsQuery,
)
from server.kiosk.paths import visit_id

DEFAULT_SPAN = timedelta(days=7)


def public_base(request: web.Request) -> str:
    """The server's public base URL: DOORSTEP_PUBLIC_URL, else the request's own origin."""
    configured = request.app[keys.SETTINGS].public_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


def zone(request: web.Request) -> ZoneInfo:
    """The deployment's time zone (DOORSTEP_TIME_ZONE)."""
    return ZoneInfo(request.app[keys.SETTINGS].time_zone)


def _shift_out(shift: roster.Shift) -> ShiftOut:
    return ShiftOut(
        id=shift.id,
        specialist=shift.username,
        specialist_name=shift.name,
        specialty=shift.specialty,
        start=shift.starts_at,
        end=shift.ends_at,
    )


@api(
    summary="Roster shifts overlapping [from, to): all of them (admin), your own (specialist)",
    tag="roster",
    query=RosterQuery,
    response=list[ShiftOut],
    roles=(Role.ADMIN, Role.SPECIALIST),
)
async def list_shifts(request: web.Request) -> web.Response:
    """GET /api/v1/roster?from=&to=&specialty=."""
    query = read_query(request, RosterQuery)
    start = query.from_ or utcnow()
    end = query.to or start + DEFAULT_SPAN
    async with db(request) as session:
        found = await roster.shifts(
            session=session,
            caller=principal(request),
            start=start,
            end=end,
            specialty=query.specialty,
        )
    return json_response([_shift_out(s) for s in found])


@api(
    summary="Add a roster shift (or the same shift weekly for N weeks): the shifts made",
    tag="roster",
    body=ShiftIn,
    response=list[ShiftOut],
    status=201,
    roles=(Role.ADMIN,),
)
async def add_shift(request: web.Request) -> web.Response:
    """POST /api/v1/roster."""
    body = await read_body(request, ShiftIn)
    async with db(request) as session:
        made = await roster.add(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            specialist=body.specialist,
            specialty=body.specialty,
            starts_at=body.start,
            ends_at=body.end,
            weeks=body.weeks,
            zone=zone(request),
        )
    return json_response([_shift_out(s) for s in made], status=201)


@api(
    summary="Remove a roster shift (follow-ups booked in it stay booked): the shift removed",
    tag="roster",
    response=ShiftOut,
    roles=(Role.ADMIN,),
)
async def remove_shift(request: web.Request) -> web.Response:
    """DELETE /api/v1/roster/{id}."""
    async with db(request) as session:
        gone = await roster.remove(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            shift_id=int(request.match_info["id"]),
        )
    return json_response(_shift_out(gone))


# Follow-ups --------------------------------------------------------------------------


def follow_up_out(found: followups.FollowUp, base: str) -> FollowUpOut:
    """The JSON of a booked follow-up (the contract's shape)."""
    return FollowUpOut.model_validate(found.out(base))


@api(
    summary="Free follow-up slots of a specialty, for the person checked in (at most 40)",
    tag="kiosk",
    query=SlotsQuery,
    response=SlotsOut,
    roles=(Role.KIOSK,),
)
async def list_slots(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/visits/{id}/slots?specialty=S."""
    query = read_query(request, SlotsQuery)
    async with db(request) as session:
        found = await followups.slots(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            visit_id=visit_id(request),
            specialty=query.specialty,
            now=utcnow(),
            minutes=request.app[keys.SETTINGS].kiosk_follow_up_minutes,
        )
    return json_response(
        SlotsOut(
            specialty=query.specialty,
            slots=[
                SlotOut(id=s.id, start=s.starts_at, end=s.ends_at, specialist=s.specialist)
                for s in found
            ],
        )
    )


@api(
    summary="Book a follow-up slot for the person checked in, at the kiosk or from home",
    tag="kiosk",
    body=FollowUpIn,
    response=FollowUpOut,
    status=201,
    errors=(409,),
    roles=(Role.KIOSK,),
)
async def book(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits/{id}/follow-ups."""
    body = await read_body(request, FollowUpIn)
    async with db(request) as session:
        found = await followups.book(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            visit_id=visit_id(request),
            slot=body.slot,
            where=body.where,
            now=utcnow(),
            minutes=request.app[keys.SETTINGS].kiosk_follow_up_minutes,
        )
    return json_response(follow_up_out(found, public_base(request)), status=201)


@api(
    summary="Join the booked follow-up of the person checked in, at its time: its consult",
    tag="kiosk",
    response=JoinOut,
    status=201,
    errors=(409,),
    roles=(Role.KIOSK,),
)
async def join(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits/{id}/follow-ups/{fid}/join."""
    async with db(request) as session:
        consult_id = await followups.join(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=consults.Policy.of(request.app[keys.SETTINGS]),
            visit_id=visit_id(request),
            follow_up_id=int(request.match_info["fid"]),
            now=utcnow(),
        )
    return json_response(JoinOut(consult_id=consult_id), status=201)
