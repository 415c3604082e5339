"""Consults API: the on-duty toggle, consult requests and their answers, notes, ICE servers,
guest links."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from server import keys
from server.consults import duty, guests, ice, paths, recording, service
from server.consults.models import NoteKind
from server.consults.schemas import (
    CheckAnswerOut,
    CheckOfferIn,
    ConsentOut,
    ConsultIn,
    ConsultOut,
    DutyIn,
    DutyOut,
    GuestIn,
    GuestOut,
    IceOut,
    IceServerOut,
    InvitationOut,
    NoteIn,
    NoteOut,
    RecordingConsentIn,
    RecordingOut,
)
from server.context import db, guest_credential, principal, recorder
from server.endpoint import api, json_response, read_body
from server.errors import NotAuthenticated, NotFound
from server.identity import Role

DOCTORS = (Role.GP, Role.SPECIALIST)


def _out(found: duty.DutyState) -> DutyOut:
    return DutyOut(on_duty=found.on_duty, specialties=list(found.specialties))


_ConsultStep = Callable[..., Awaitable["service.View"]]
"""A service step on one consult: get, accept or decline (keyword-only, as they take)."""


async def _with_consult(request: web.Request, step: _ConsultStep) -> web.Response:
    """Run one service step on the consult in the path; answer with the consult."""
    consult_id = paths.consult_id(request)
    async with db(request) as session:
        view = await step(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            consult_id=consult_id,
        )
    return json_response(consult_out(view))


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


# Consults ----------------------------------------------------------------------------


def _policy(request: web.Request) -> service.Policy:
    return service.Policy.of(request.app[keys.SETTINGS])


def consult_out(view: service.View) -> ConsultOut:
    """The JSON of one consult."""
    return ConsultOut(
        **view.summary(),
        notes=[
            NoteOut(id=n.id, author=n.author, text=n.text, created_at=n.created_at, kind=n.kind)
            for n in view.notes
        ],
    )


@api(
    summary="Ask for a video consult on a patient: a specialty's on-duty specialists, or one",
    tag="consults",
    body=ConsultIn,
    response=ConsultOut,
    status=201,
    roles=(Role.GP,),
)
async def create_consult(request: web.Request) -> web.Response:
    """POST /api/v1/consults."""
    body = await read_body(request, ConsultIn)
    async with db(request) as session:
        view = await service.create(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            patient_id=body.patient_id,
            specialty=body.specialty,
            specialist=body.specialist,
            reason=body.reason,
            study_uids=body.study_uids,
            scheduled_at=body.scheduled_at,
        )
    return json_response(consult_out(view), status=201)


@api(
    summary="Your consults: your clinic's (GP); those you took and those offered to you now",
    tag="consults",
    response=list[ConsultOut],
    roles=DOCTORS,
)
async def list_consults(request: web.Request) -> web.Response:
    """GET /api/v1/consults."""
    async with db(request) as session:
        found = await service.consults(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
        )
    return json_response([consult_out(v) for v in found])


@api(summary="One consult you are a member of", tag="consults", response=ConsultOut, roles=DOCTORS)
async def get_consult(request: web.Request) -> web.Response:
    """GET /api/v1/consults/{id}."""
    return await _with_consult(request, service.get)


@api(
    summary="Accept the consult offered to you",
    tag="consults",
    response=ConsultOut,
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def accept(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/accept."""
    return await _with_consult(request, service.accept)


@api(
    summary="Decline the consult offered to you (it goes to the next on-duty specialist)",
    tag="consults",
    response=ConsultOut,
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def decline(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/decline."""
    return await _with_consult(request, service.decline)


@api(
    summary="End the consult (the GP also withdraws a request nobody took yet)",
    tag="consults",
    response=ConsultOut,
    errors=(409,),
    roles=DOCTORS,
)
async def end(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/end."""
    consult_id = paths.consult_id(request)
    async with db(request) as session:
        view = await service.end(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            consult_id=consult_id,
        )
    return json_response(consult_out(view))


@api(
    summary="Add a note to a consult (advice, prescription suggestion, referral)",
    tag="consults",
    body=NoteIn,
    response=ConsultOut,
    status=201,
    errors=(409,),
    roles=DOCTORS,
)
async def add_note(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/note."""
    consult_id = paths.consult_id(request)
    body = await read_body(request, NoteIn)
    async with db(request) as session:
        view = await service.add_note(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            consult_id=consult_id,
            text=body.text,
            kind=NoteKind(body.kind),
        )
    return json_response(consult_out(view), status=201)


async def _ice_user(request: web.Request, consult_id: int) -> str:
    """Who the TURN credentials are for: a member's user id, or `guest-{id}` for a guest."""
    if request.get(keys.PRINCIPAL) is None:
        async with db(request) as session:
            guest = await guests.guest_member(
                session=session, cookie_value=guest_credential(request), consult_id=consult_id
            )
        if guest is None:
            raise NotFound(f"No consult {consult_id}.")
        if not guest.valid:
            raise NotAuthenticated(
                f"Your guest access has {guest.state.value}; ask the doctor for a new link."
            )
        return f"guest-{guest.guest_id}"
    caller = principal(request)
    async with db(request) as session:
        await service.member(session=session, caller=caller, consult_id=consult_id)
    return str(caller.user_id)


@api(
    summary="The STUN/TURN servers of the call, with TURN credentials valid until expires_at "
    "(members, and guests of the consult)",
    tag="consults",
    response=IceOut,
    roles=(*DOCTORS, Role.KIOSK),
    guest=True,
)
async def ice_servers(request: web.Request) -> web.Response:
    """GET /api/v1/consults/{id}/ice."""
    consult_id = paths.consult_id(request)
    user = await _ice_user(request, consult_id)
    return _ice_response(request, _ice_for(request, user))


def _ice_for(request: web.Request, user: str) -> ice.IceServers:
    """The ICE servers of a call for this TURN user (the network check takes the same)."""
    settings = request.app[keys.SETTINGS]
    return ice.ice_servers(
        urls=settings.turn_urls,
        secret=settings.turn_secret.get_secret_value(),
        user=user,
        ttl=timedelta(seconds=settings.consult_ice_ttl_seconds),
    )


def _ice_response(request: web.Request, found: ice.IceServers) -> web.Response:
    out = IceOut(
        ice_servers=[
            IceServerOut(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in found.servers
        ],
        expires_at=found.expires_at,
        ice_transport_policy=request.app[keys.SETTINGS].consult_ice_transport_policy,
    )
    return web.Response(
        text=out.model_dump_json(exclude_none=True), content_type="application/json"
    )


# Guest links -------------------------------------------------------------------------


def _guest_out(link: guests.GuestLink) -> GuestOut:
    return GuestOut(
        id=link.id,
        label=link.label,
        created_by=link.created_by,
        created_at=link.created_at,
        expires_at=link.expires_at,
        redeemed_at=link.redeemed_at,
        revoked_at=link.revoked_at,
        state=link.state.value,
    )


def public_base(request: web.Request) -> str:
    """The server's public base URL: DOORSTEP_PUBLIC_URL, else the request's own origin."""
    configured = request.app[keys.SETTINGS].public_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


@api(
    summary="Invite a guest (no account) into the call: a one-time link, valid until expires_at",
    tag="consults",
    body=GuestIn,
    response=InvitationOut,
    status=201,
    errors=(409,),
    roles=DOCTORS,
)
async def invite_guest(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/guests (an empty body takes the defaults)."""
    consult_id = paths.consult_id(request)
    body = await read_body(request, GuestIn) if request.body_exists else GuestIn()
    async with db(request) as session:
        invitation = await guests.invite(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            policy=guests.Policy.of(request.app[keys.SETTINGS]),
            consult_id=consult_id,
            label=body.label,
            expires_in_minutes=body.expires_in_minutes,
        )
    out = InvitationOut(
        **_guest_out(invitation.link).model_dump(), url=invitation.url(public_base(request))
    )
    return json_response(out, status=201)


@api(
    summary="The guest links of a consult, newest first (without their tokens)",
    tag="consults",
    response=list[GuestOut],
    errors=(409,),
    roles=DOCTORS,
)
async def list_guests(request: web.Request) -> web.Response:
    """GET /api/v1/consults/{id}/guests."""
    consult_id = paths.consult_id(request)
    async with db(request) as session:
        found = await guests.links(
            session=session, caller=principal(request), consult_id=consult_id
        )
    return json_response([_guest_out(link) for link in found])


@api(
    summary="Revoke a guest link: it stops working and its guest leaves the call at once",
    tag="consults",
    response=GuestOut,
    errors=(409,),
    roles=DOCTORS,
)
async def revoke_guest(request: web.Request) -> web.Response:
    """DELETE /api/v1/consults/{id}/guests/{guest_id}."""
    consult_id = paths.consult_id(request)
    raw = request.match_info["guest_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"No guest {raw[:20]} of consult {consult_id}.")
    async with db(request) as session:
        link = await guests.revoke(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            consult_id=consult_id,
            guest_id=int(raw),
        )
    await request.app[keys.CONSULT_ROOMS].kick(consult_id, link.id)
    return json_response(_guest_out(link))


# The pre-call network check ----------------------------------------------------------


@api(
    summary="The STUN/TURN servers for the pre-call network check (those of a call)",
    tag="consults",
    response=IceOut,
    roles=DOCTORS,
)
async def check_ice(request: web.Request) -> web.Response:
    """GET /api/v1/consults/check/ice."""
    return _ice_response(request, _ice_for(request, str(principal(request).user_id)))


@api(
    summary="Start a pre-call network check: the echo peer's answer to your offer",
    tag="consults",
    body=CheckOfferIn,
    response=CheckAnswerOut,
    errors=(429,),
    roles=DOCTORS,
)
async def check_answer(request: web.Request) -> web.Response:
    """POST /api/v1/consults/check: the echo peer sends your tracks back for a minute."""
    body = await read_body(request, CheckOfferIn)
    caller = principal(request)
    sdp = await request.app[keys.CONSULT_CHECKS].answer(
        user_id=caller.user_id, sdp=body.sdp, servers=_ice_for(request, str(caller.user_id))
    )
    return json_response(CheckAnswerOut(type="answer", sdp=sdp))


# Recording -----------------------------------------------------------------------------


def _recording_out(found: recording.State) -> RecordingOut:
    def consent(given: recording.Consent | None) -> ConsentOut | None:
        return ConsentOut(by=given.by, at=given.at) if given is not None else None

    return RecordingOut(
        consult_id=found.consult_id,
        gp_consent=consent(found.gp_consent),
        patient_consent=found.patient_consent,
        specialist_consent=consent(found.specialist_consent),
        recording=found.recording,
        started_at=found.started_at,
        stopped_at=found.stopped_at,
        stop_reason=found.stop_reason,
        duration_seconds=found.duration_seconds,
        tracks=found.tracks,
        available=found.available,
    )


@api(
    summary="Consent to recording the call (each doctor; the GP with the patient's), or withdraw",
    tag="consults",
    body=RecordingConsentIn,
    response=RecordingOut,
    errors=(409,),
    roles=DOCTORS,
)
async def recording_consent(request: web.Request) -> web.Response:
    """POST /api/v1/consults/{id}/recording: recording starts once both doctors consented."""
    consult_id = paths.consult_id(request)
    body = await read_body(request, RecordingConsentIn)
    async with db(request) as session:
        outcome = await recording.consent(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            consult_id=consult_id,
            consent=body.consent,
            patient_consent=body.patient_consent,
        )
    if outcome.start:
        request.app[keys.CONSULT_RECORDERS].start(consult_id, outcome.org_id)
    return json_response(_recording_out(outcome.state))


@api(
    summary="Where the consult's recording stands: who consented, recording or not",
    tag="consults",
    response=RecordingOut,
    roles=DOCTORS,
)
async def recording_state(request: web.Request) -> web.Response:
    """GET /api/v1/consults/{id}/recording/state."""
    consult_id = paths.consult_id(request)
    async with db(request) as session:
        found = await recording.state(
            session=session, caller=principal(request), consult_id=consult_id
        )
    return json_response(_recording_out(found))


@api(
    summary="The recording of an ended consult (video/webm), for its members",
    tag="consults",
    errors=(409,),
    roles=DOCTORS,
    media_type="video/webm",
)
async def recording_file(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/consults/{id}/recording: the WebM file; 409 before the end or if none."""
    consult_id = paths.consult_id(request)
    async with db(request) as session:
        found = await recording.viewed(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            consult_id=consult_id,
        )
    path = request.app[keys.SETTINGS].data_dir / found.media_path
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/webm",
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'inline; filename="consult-{consult_id}.webm"',
            "ETag": f'"{found.sha256}"',
        },
    )
