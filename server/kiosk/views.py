"""Kiosk API: enrolment codes, check-in, vitals, the on-duty queue, the summary and a person's
history."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server import keys
from server.consults import service as consults
from server.consults.views import public_base
from server.context import db, principal, recorder
from server.db import utcnow
from server.endpoint import api, json_response, read_body
from server.identity import Role
from server.kiosk import enrolment, followups, language, queue, summary, triage, visits
from server.kiosk.followup_schemas import FollowUpOut
from server.kiosk.paths import person_id, visit_id
from server.kiosk.schemas import (
    AdviceOut,
    ClinicLinkIn,
    ClinicLinkOut,
    ClinicOut,
    EnrolmentIn,
    EnrolmentOut,
    FinishIn,
    FlagOut,
    HistoryOut,
    LinkedVisitOut,
    QueueIn,
    QueueOut,
    ReadingOut,
    SummaryOut,
    TakeHomeOut,
    VisitCreatedOut,
    VisitIn,
    VisitOut,
    VitalsIn,
    VitalsOut,
    VitalsValues,
)

KIOSK = (Role.KIOSK,)

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


# Visits and vitals


def _follow_up(request: web.Request, found: followups.FollowUp | None) -> FollowUpOut | None:
    return FollowUpOut(**found.out(public_base(request))) if found else None


def _values(vitals: triage.Vitals) -> VitalsValues:
    return VitalsValues(**visits.as_dict(vitals))


def _flags(request: web.Request, lang: str, found: list[triage.Flag]) -> list[FlagOut]:
    say = language.gettext(request, lang)
    return [FlagOut(code=f.code, severity=f.severity, message=say(f.message)) for f in found]


@api(
    summary="Check a person in: found again by their number and date of birth, or a new record",
    tag="kiosk",
    body=VisitIn,
    response=VisitCreatedOut,
    status=201,
    roles=KIOSK,
)
async def check_in(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits."""
    body = await read_body(request, VisitIn)
    who = visits.identity(phone=body.phone, id_number=body.id_number, birth_date=body.birth_date)
    async with db(request) as session:
        visit = await visits.check_in(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            secret=request.app[keys.SETTINGS].resolved_secret_key(),
            who=who,
            consent=body.consent,
            language=body.language,
        )
        out = VisitCreatedOut(id=visit.id, person_id=visit.person_id, returning=visit.known)
    return json_response(out, status=201)


@api(summary="This kiosk's open visit", tag="kiosk", response=VisitOut, roles=KIOSK)
async def get_visit(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/visits/{visit_id}."""
    return await _visit_out(request, visit_id(request))


@api(
    summary="The visit open at this kiosk now, if any (for a connected device's bridge; an "
    "addition to the contract)",
    tag="kiosk",
    response=VisitOut,
    roles=KIOSK,
)
async def get_current_visit(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/visits/current."""
    async with db(request) as session:
        found = await visits.open_visit_id(session=session, caller=principal(request))
    return await _visit_out(request, found)


async def _visit_out(request: web.Request, wanted: int) -> web.Response:
    async with db(request) as session:
        visit = await visits.open_visit(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            visit_id=wanted,
        )
        vitals, found = await visits.current(session, visit.id)
        due = await followups.due_follow_up(
            session=session, person_id=visit.person_id, now=utcnow()
        )
        out = VisitOut(
            id=visit.id,
            person_id=visit.person_id,
            returning=visit.known,
            language=visit.language,
            started_at=visit.started_at,
            vitals=_values(vitals),
            flags=_flags(request, visit.language, found),
            consult_id=visit.consult_id,
            due_follow_up=_follow_up(request, due),
        )
    return json_response(out)


@api(
    summary="Record vitals (typed, or posted by a connected device); the triage flags",
    tag="kiosk",
    body=VitalsIn,
    response=VitalsOut,
    roles=KIOSK,
)
async def post_vitals(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits/{visit_id}/vitals."""
    body = await read_body(request, VitalsIn)
    measured = triage.Vitals(**body.model_dump(exclude={"source"}))
    async with db(request) as session:
        caller = principal(request)
        lang = await visits.language_of(session=session, caller=caller, visit_id=visit_id(request))
        try:
            vitals, found = await visits.record_vitals(
                session=session,
                caller=caller,
                audit=recorder(request),
                visit_id=visit_id(request),
                measured=measured,
                source=body.source,
            )
        except triage.Implausible as error:
            raise language.translated(request, lang, error) from None
    return json_response(VitalsOut(vitals=_values(vitals), flags=_flags(request, lang, found)))


# The queue


def _place_out(place: queue.Place) -> QueueOut:
    return QueueOut(
        consult_id=place.consult_id,
        position=place.position,
        estimated_wait_s=place.estimated_wait_s,
        status=place.status,
        specialty=place.specialty,
        on_duty=place.on_duty,
        specialist=place.specialist,
    )


@api(
    summary="See an expert now: join the on-duty queue of a specialty (by the flags unless told)",
    tag="kiosk",
    body=QueueIn,
    response=QueueOut,
    status=201,
    roles=KIOSK,
)
async def join_queue(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits/{visit_id}/queue (an empty body takes the defaults)."""
    body = await read_body(request, QueueIn) if request.body_exists else QueueIn()
    async with db(request) as session:
        place, new = await queue.join(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=consults.Policy.of(request.app[keys.SETTINGS]),
            visit_id=visit_id(request),
            specialty=body.specialty,
        )
    return json_response(_place_out(place), status=201 if new else 200)


@api(
    summary="Where the visit stands in the queue now (or its consult, once taken)",
    tag="kiosk",
    response=QueueOut,
    roles=KIOSK,
)
async def get_queue(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/visits/{visit_id}/queue."""
    async with db(request) as session:
        place = await queue.place(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            visit_id=visit_id(request),
        )
    return json_response(_place_out(place))


@api(
    summary="Leave the queue, or hang up: the visit's consult ends",
    tag="kiosk",
    status=204,
    roles=KIOSK,
)
async def leave_queue(request: web.Request) -> web.Response:
    """DELETE /api/v1/kiosk/visits/{visit_id}/queue."""
    async with db(request) as session:
        await queue.leave(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            visit_id=visit_id(request),
        )
    return web.Response(status=204)


@api(
    summary="End the visit (the person finished, or the kiosk reset): nothing of it stays open",
    tag="kiosk",
    body=FinishIn,
    status=204,
    roles=KIOSK,
)
async def finish(request: web.Request) -> web.Response:
    """POST /api/v1/kiosk/visits/{visit_id}/finish (an empty body means "finish")."""
    body = await read_body(request, FinishIn) if request.body_exists else FinishIn()
    async with db(request) as session:
        caller = principal(request)
        await visits.open_visit(
            session=session, caller=caller, audit=recorder(request), visit_id=visit_id(request)
        )
        await visits.close_open(
            session=session,
            caller=caller,
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            how=body.how,
        )
    return web.Response(status=204)


# Summary and history


@api(
    summary="The visit's summary: vitals, flags, the specialist's advice, the take-home link",
    tag="kiosk",
    response=SummaryOut,
    roles=KIOSK,
)
async def get_summary(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/visits/{visit_id}/summary."""
    settings = request.app[keys.SETTINGS]
    async with db(request) as session:
        found, take_home = await summary.of_visit(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            secret=settings.resolved_secret_key(),
            lifetime=timedelta(hours=settings.kiosk_take_home_hours),
            visit_id=visit_id(request),
        )
    url = f"{public_base(request)}/kiosk/take-home/{take_home.token}"
    out = SummaryOut(
        visit_id=found.visit_id,
        started_at=found.started_at,
        vitals=_values(found.vitals),
        flags=_flags(request, found.language, found.flags),
        advice=[
            AdviceOut(kind=a.kind, text=a.text, author=a.author, created_at=a.created_at)
            for a in found.advice
        ],
        specialist=found.specialist,
        follow_up=_follow_up(request, found.follow_up),
        take_home=TakeHomeOut(
            url=url, expires_at=take_home.expires_at, qr_svg=take_home.qr_svg(url)
        ),
    )
    return json_response(out)


@api(
    summary="A person's vitals per visit, oldest first (the kiosk during their visit, the "
    "specialist of their consult, the GPs of the clinic they linked to)",
    tag="kiosk",
    response=HistoryOut,
    roles=(Role.KIOSK, Role.SPECIALIST, Role.GP),
)
async def person_vitals(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/people/{person_id}/vitals."""
    person = person_id(request)
    async with db(request) as session:
        found = await visits.history(
            session=session, caller=principal(request), audit=recorder(request), person_id=person
        )
    out = HistoryOut(
        person_id=person,
        readings=[
            ReadingOut(taken_at=v.started_at, flags=list(v.flags), **visits.as_dict(v.vitals))
            for v in found
        ],
    )
    return json_response(out)


# The person's GP clinic


@api(
    summary="The GP clinics a person can link their record to",
    tag="kiosk",
    response=list[ClinicOut],
    roles=KIOSK,
)
async def list_clinics(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/clinics."""
    async with db(request) as session:
        found = await visits.clinics(session=session, caller=principal(request))
    return json_response([ClinicOut(id=c.id, name=c.name) for c in found])


@api(
    summary="Link the person's record to their GP clinic, whose GPs then see their kiosk visits",
    tag="kiosk",
    body=ClinicLinkIn,
    response=ClinicLinkOut,
    roles=KIOSK,
)
async def link_clinic(request: web.Request) -> web.Response:
    """PUT /api/v1/kiosk/visits/{visit_id}/clinic."""
    body = await read_body(request, ClinicLinkIn)
    async with db(request) as session:
        clinic = await visits.link_clinic(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            visit_id=visit_id(request),
            clinic_id=body.clinic_id,
        )
    out = ClinicLinkOut(clinic=ClinicOut(id=clinic.id, name=clinic.name) if clinic else None)
    return json_response(out)


@api(
    summary="Your clinic's people's kiosk visits (those who linked their record), newest first",
    tag="kiosk",
    response=list[LinkedVisitOut],
    roles=(Role.GP,),
)
async def clinic_visits(request: web.Request) -> web.Response:
    """GET /api/v1/kiosk/clinic-visits."""
    async with db(request) as session:
        found = await visits.clinic_visits(
            session=session, caller=principal(request), audit=recorder(request)
        )
    return json_response(
        [
            LinkedVisitOut(
                visit_id=v.visit_id,
                person_id=v.person_id,
                birth_date=v.birth_date,
                corner=v.corner,
                started_at=v.started_at,
                vitals=_values(v.vitals),
                flags=[
                    FlagOut(code=f.code, severity=f.severity, message=f.message) for f in v.flags
                ],
            )
            for v in found
        ]
    )
