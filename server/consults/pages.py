"""Consult pages: the GP's request form and status page, the specialist's consults and duty.

The call itself is `/consults/{id}` (the contract's call page), so where a request stands is
`/consults/{id}/status`. Every form works without script; the modules in web/static/consults/
do the same through the API and keep the pages live over the events WebSocket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.access import allow
from server.accounts import service as accounts
from server.archive import links
from server.consults import call_pages, duty, paths, service
from server.consults.models import ConsultStatus
from server.context import db, principal, recorder
from server.errors import Conflict, DomainError, InvalidInput, NotFound
from server.forms import Form, query_id, read_form
from server.identity import Principal, Role
from server.patients import lookup
from server.patients.display import PatientView, patient_view
from server.templates import dicom_date, render

DOCTORS = (Role.GP, Role.SPECIALIST)
LABELS = {
    "ask": "Who to ask",
    "specialty": "Specialty",
    "specialist": "Specialist",
    "reason": "Reason for the consult",
    "studies": "Studies to discuss",
    "timing": "When",
    "scheduled_at": "Date and time",
}
FIELD_IDS = {"ask": "c-ask-specialty", "timing": "c-timing-now", "studies": "c-studies"}
"""The element an error summary links to, where it is not `c-<field>`."""
SCHEDULE_SLACK = timedelta(minutes=5)
"""How far in the past a scheduled time may be (a form filled in slowly) before it is refused."""


def setup_pages(app: web.Application) -> None:
    """Register the consult pages (called from server/consults/routes.py)."""
    app.router.add_get("/consults/new", new_consult)
    app.router.add_post("/consults", create_consult)
    app.router.add_get("/consults", consult_list)
    app.router.add_get(f"/consults/{paths.ID}", call_pages.call_page)
    app.router.add_get("/consults/check", network_check)
    app.router.add_get(f"/consults/{paths.ID}/status", consult_status)
    app.router.add_post(f"/consults/{paths.ID}/again", ask_again)
    app.router.add_post(f"/consults/{paths.ID}/withdraw", withdraw)
    app.router.add_post(f"/consults/{paths.ID}/accept", accept)
    app.router.add_post(f"/consults/{paths.ID}/decline", decline)
    app.router.add_post("/duty", set_duty)


def _policy(request: web.Request) -> service.Policy:
    return service.Policy.of(request.app[keys.SETTINGS])


# Who the specialists are ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Specialist:
    """An active specialist as the form offers them."""

    id: int
    username: str
    name: str
    specialties: tuple[str, ...]
    on_duty: bool

    @property
    def label(self) -> str:
        """'Dr Hana Heart (cardiology) — on duty now'."""
        fields = ", ".join(self.specialties) or "no specialty"
        return f"{self.name} ({fields}){' — on duty now' if self.on_duty else ''}"


async def specialists(*, session: AsyncSession) -> list[Specialist]:
    """The active specialists, those on duty now first, then by name."""
    on_duty: set[int] = set()
    for specialty in accounts.SPECIALTIES:
        on_duty.update(await duty.on_duty_for(session=session, specialty=specialty))
    found = [
        Specialist(
            id=u.id,
            username=u.username,
            name=u.display_name or u.username,
            specialties=tuple(s.specialty for s in u.specialties),
            on_duty=u.id in on_duty,
        )
        for u in await accounts.list_users(session=session, role=Role.SPECIALIST)
        if u.is_active
    ]
    return sorted(found, key=lambda s: (not s.on_duty, s.name.lower(), s.username))


async def _names(session: AsyncSession) -> dict[str, str]:
    """username -> display name of every specialist (for plain words on the pages)."""
    return {
        u.username: u.display_name or u.username
        for u in await accounts.list_users(session=session, role=Role.SPECIALIST)
    }


# Words ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a consult stands, in plain words, and what the GP can do now."""

    headline: str
    detail: str
    tone: str
    """info, success, warning or error (the alert class)."""
    offered_until: datetime | None = None
    join: bool = False
    again: bool = False
    withdraw: bool = False

    @property
    def until(self) -> str:
        """The end of the offer as ISO 8601 (for the page's countdown), '' for none."""
        return iso(self.offered_until)


def iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a Z, as the API writes times; '' for None."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""


def standing(view: service.View, names: Mapping[str, str], *, named: str | None) -> Standing:
    """The GP's view of a request: who has it, or how it ended, and what can be done now."""
    c = view.consult
    asked = f"a {c.specialty} specialist" if c.specialty else names.get(named or "", named or "")
    who = names.get(view.specialist or "", view.specialist or "")
    status = c.status
    if status == ConsultStatus.REQUESTED and view.offered_to:
        then = (
            "the request goes to the next specialist on duty."
            if c.specialty
            else "the request ends and you can ask again."
        )
        return Standing(
            f"Offered to {who}",
            f"Waiting for {who} to answer. If they decline or do not answer in time, {then}",
            "info",
            offered_until=c.offered_until,
            withdraw=True,
        )
    if status == ConsultStatus.REQUESTED:
        return Standing(
            "Waiting for a specialist",
            f"Nobody is on duty for {c.specialty or 'this request'} at the moment. The request "
            "goes to the first one who comes on duty.",
            "warning",
            offered_until=c.offered_until,
            withdraw=True,
        )
    if status == ConsultStatus.ACCEPTED:
        return Standing(
            f"{who} accepted — join the call",
            f"{who} is ready for the video call.",
            "success",
            join=True,
            withdraw=True,
        )
    if status == ConsultStatus.LIVE:
        return Standing(
            f"The call with {who} is on",
            "Both of you are in the call.",
            "success",
            join=True,
            withdraw=True,
        )
    if status == ConsultStatus.DECLINED:
        return Standing(
            f"{asked} declined" if asked else "Declined",
            "The specialist cannot take this consult. Ask again, or ask someone else.",
            "error",
            again=True,
        )
    if status == ConsultStatus.EXPIRED:
        return Standing(
            "Nobody answered in time",
            f"No answer came from {asked or 'the specialists asked'}. Ask again, or ask "
            "someone else.",
            "error",
            again=True,
        )
    if c.accepted_at is None:
        return Standing(
            "Withdrawn", "The request was withdrawn before anyone took it.", "warning", again=True
        )
    return Standing("Ended", f"The consult with {who} has ended.", "info", again=True)


# The request form ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsultForm:
    """What the consult request form offers and holds."""

    patient: PatientView
    studies: Sequence[tuple[str, str]]
    """(Study Instance UID, '14 Mar 2026 · ECG') of the patient's studies."""
    specialties: tuple[str, ...]
    specialists: Sequence[Specialist]
    values: Mapping[str, str]
    chosen_studies: frozenset[str]
    errors: Mapping[str, str]
    form_error: str = ""


async def _form_page(
    request: web.Request,
    *,
    patient_id: int,
    values: Mapping[str, str] | None = None,
    chosen_studies: Sequence[str] = (),
    errors: Mapping[str, str] | None = None,
    form_error: str = "",
    status: int = 200,
) -> web.Response:
    patient = await lookup.visible_patient(request, patient_id)
    async with db(request) as session:
        studies = await links.studies_of_patient(
            session=session, caller=principal(request), patient_id=patient.id
        )
        offered = await specialists(session=session)
    form = ConsultForm(
        patient=patient_view(patient),
        studies=[
            (s.study_uid, f"{dicom_date(s.study_date)} · {s.study_description or 'Study'}")
            for s in studies
        ],
        specialties=tuple(accounts.SPECIALTIES),
        specialists=offered,
        values={
            "ask": "specialty",
            "specialty": "general",
            "specialist": "",
            "reason": "",
            "timing": "now",
            "scheduled_at": "",
            **(values or {}),
        },
        chosen_studies=frozenset(chosen_studies),
        errors=errors or {},
        form_error=form_error,
    )
    return render(
        request,
        "consults/new.html",
        status=status,
        form=form,
        labels=LABELS,
        field_ids=FIELD_IDS,
    )


@allow(Role.GP, page=True)
async def new_consult(request: web.Request) -> web.StreamResponse:
    """GET /consults/new?patient={id}: the request form for one of the clinic's patients."""
    patient_id = query_id(request, "patient")
    if patient_id is None:
        raise NotFound("Start a consult from the patient's page.")
    return await _form_page(request, patient_id=patient_id)


def parse_scheduled(text: str, *, now: datetime) -> datetime | None:
    """A `datetime-local` value (UTC, as every time on the pages) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment if moment >= now - SCHEDULE_SLACK else None


def validate(
    form: Form, *, patient_studies: Sequence[str], now: datetime
) -> tuple[dict[str, str], list[str], datetime | None, dict[str, str]]:
    """(values, studies, scheduled time, errors) of a submitted request form."""
    values = {
        "ask": form.text("ask", limit=16),
        "specialty": form.text("specialty", limit=64),
        "specialist": form.text("specialist", limit=64),
        "reason": form.text("reason", limit=service.REASON_MAX + 1),
        "timing": form.text("timing", limit=16),
        "scheduled_at": form.text("scheduled_at", limit=32),
    }
    studies = form.all("study", limit=64)
    errors: dict[str, str] = {}
    if values["ask"] not in ("specialty", "specialist"):
        errors["ask"] = "Choose whether to ask a specialty or a named specialist."
    elif values["ask"] == "specialty" and values["specialty"] not in accounts.SPECIALTIES:
        errors["specialty"] = "Choose the specialty to ask."
    elif values["ask"] == "specialist" and not values["specialist"]:
        errors["specialist"] = "Choose the specialist to ask."
    if not values["reason"]:
        errors["reason"] = "Say what you would like to discuss."
    elif len(values["reason"]) > service.REASON_MAX:
        errors["reason"] = f"Write the reason in {service.REASON_MAX} characters or fewer."
    unknown = set(studies) - set(patient_studies)
    if unknown or len(studies) > service.MAX_STUDIES:
        errors["studies"] = (
            f"Attach at most {service.MAX_STUDIES} studies."
            if not unknown
            else "Choose studies of this patient only."
        )
    scheduled: datetime | None = None
    if values["timing"] not in ("now", "later"):
        errors["timing"] = "Choose now or a time later."
    elif values["timing"] == "later":
        if not values["scheduled_at"]:
            errors["scheduled_at"] = "Enter the date and time of the call."
        else:
            scheduled = parse_scheduled(values["scheduled_at"], now=now)
            if scheduled is None:
                errors["scheduled_at"] = (
                    "Enter a date and time from now on, as YYYY-MM-DD HH:MM (UTC)."
                )
    return values, studies, scheduled, errors


@allow(Role.GP, page=True)
async def create_consult(request: web.Request) -> web.StreamResponse:
    """POST /consults: ask for the consult; to its status page (303), or the form again (422)."""
    form = await read_form(request)
    raw = form.text("patient_id", limit=12)
    if not (raw.isascii() and raw.isdigit()):
        raise NotFound("No such patient in your clinic.")
    patient_id = int(raw)
    patient = await lookup.visible_patient(request, patient_id)
    async with db(request) as session:
        found = await links.studies_of_patient(
            session=session, caller=principal(request), patient_id=patient.id
        )
    now = datetime.now(UTC)
    values, studies, scheduled, errors = validate(
        form, patient_studies=[s.study_uid for s in found], now=now
    )
    form_error, status = "", 422
    if not errors:
        try:
            view = await _create(
                request,
                patient_id=patient_id,
                specialty=values["specialty"] if values["ask"] == "specialty" else None,
                specialist=values["specialist"] if values["ask"] == "specialist" else None,
                reason=values["reason"],
                study_uids=studies,
                scheduled_at=scheduled,
            )
            raise web.HTTPSeeOther(f"/consults/{view.consult.id}/status")
        except NotFound:
            raise
        except DomainError as error:
            form_error, status = error.message, error.status
    return await _form_page(
        request,
        patient_id=patient_id,
        values=values,
        chosen_studies=studies,
        errors=errors,
        form_error=form_error,
        status=status,
    )


async def _create(
    request: web.Request,
    *,
    patient_id: int,
    specialty: str | None,
    specialist: str | None,
    reason: str,
    study_uids: Sequence[str],
    scheduled_at: datetime | None,
) -> service.View:
    async with db(request) as session:
        return await service.create(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            patient_id=patient_id,
            specialty=specialty,
            specialist=specialist,
            reason=reason,
            study_uids=study_uids,
            scheduled_at=scheduled_at,
        )


# The GP's status page ------------------------------------------------------------------


async def _get(request: web.Request, consult_id: int) -> service.View:
    async with db(request) as session:
        return await service.get(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            consult_id=consult_id,
        )


def _named(view: service.View, ids: Mapping[int, str]) -> str | None:
    named_id = view.consult.named_specialist_id
    return ids.get(named_id) if named_id is not None else None


@allow(Role.GP, page=True)
async def consult_status(request: web.Request) -> web.StreamResponse:
    """GET /consults/{id}/status: where the GP's request stands, kept live by consult-live."""
    view = await _get(request, paths.consult_id(request))
    async with db(request) as session:
        people = await accounts.list_users(session=session, role=Role.SPECIALIST)
    names = {u.username: u.display_name or u.username for u in people}
    named = _named(view, {u.id: u.username for u in people})
    return render(
        request,
        "consults/status.html",
        view=view,
        standing=standing(view, names, named=named),
        named=names.get(named or "", named),
        again=request.query.get("again", "").isdigit(),
    )


@allow(Role.GP, Role.SPECIALIST, page=True)
async def network_check(request: web.Request) -> web.StreamResponse:
    """GET /consults/check: the pre-call check of camera, microphone and network (consult-check)."""
    return render(request, "consults/check.html")


@allow(Role.GP, page=True)
async def ask_again(request: web.Request) -> web.StreamResponse:
    """POST /consults/{id}/again: a new request with the same fields; to its status (303)."""
    await read_form(request)  # the CSRF token is checked by the middleware
    old = await _get(request, paths.consult_id(request))
    async with db(request) as session:
        people = await accounts.list_users(session=session, role=Role.SPECIALIST)
    named = _named(old, {u.id: u.username for u in people})
    scheduled = old.consult.scheduled_at
    now = datetime.now(UTC)
    try:
        view = await _create(
            request,
            patient_id=old.consult.patient_id,
            specialty=old.consult.specialty,
            specialist=named if old.consult.specialty is None else None,
            reason=old.consult.reason,
            study_uids=old.study_uids,
            scheduled_at=scheduled if scheduled is not None and scheduled > now else None,
        )
    except NotFound:
        raise
    except DomainError as error:
        return _refused(request, error, back=f"/consults/{old.consult.id}/status")
    raise web.HTTPSeeOther(f"/consults/{view.consult.id}/status?again={old.consult.id}")


@allow(Role.GP, page=True)
async def withdraw(request: web.Request) -> web.StreamResponse:
    """POST /consults/{id}/withdraw: the GP ends a request (or the consult); back (303)."""
    consult_id = paths.consult_id(request)
    await read_form(request)
    try:
        async with db(request) as session:
            await service.end(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                consult_id=consult_id,
            )
    except Conflict as error:
        return _refused(request, error, back=f"/consults/{consult_id}/status")
    raise web.HTTPSeeOther(f"/consults/{consult_id}/status")


def _refused(request: web.Request, error: DomainError, *, back: str) -> web.Response:
    return render(
        request, "consults/refused.html", status=error.status, message=error.message, back=back
    )


# The list (both doctors) and the specialist's answers ----------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One consult on the list."""

    view: service.View
    standing: Standing
    offered_to_me: bool
    mine: bool

    @property
    def until(self) -> str:
        """The end of the offer to me as ISO 8601 (for the countdown), '' for none."""
        return iso(self.view.consult.offered_until) if self.offered_to_me else ""


def _rows(views: Sequence[service.View], caller: Principal, names: Mapping[str, str]) -> list[Row]:
    rows = []
    for v in views:
        offered = v.consult.status == ConsultStatus.REQUESTED and v.offered_to == caller.username
        rows.append(
            Row(
                view=v,
                standing=standing(v, names, named=None),
                offered_to_me=offered,
                mine=v.accepted_by == caller.username,
            )
        )
    return rows


_NOTICES = {
    "accepted": "You accepted consult {id}.",
    "declined": "You declined consult {id}. It goes to the next specialist on duty, if any.",
}


@allow(*DOCTORS, page=True)
async def consult_list(request: web.Request) -> web.StreamResponse:
    """GET /consults: a GP's clinic's consults; a specialist's offers and the consults they took."""
    caller = principal(request)
    async with db(request) as session:
        views = await service.consults(
            session=session,
            caller=caller,
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
        )
        names = await _names(session)
        on_duty = (
            (await duty.state(session=session, caller=caller)).on_duty
            if caller.role is Role.SPECIALIST
            else False
        )
    rows = _rows(views, caller, names)
    done = request.query.get("done", "")
    number = request.query.get("id", "")
    notice = (
        _NOTICES[done].format(id=number)
        if done in _NOTICES and number.isdigit() and len(number) <= 12
        else ""
    )
    return render(
        request,
        "consults/list.html",
        offers=[r for r in rows if r.offered_to_me],
        taken=[
            r
            for r in rows
            if not r.offered_to_me
            and r.view.consult.status in (ConsultStatus.ACCEPTED, ConsultStatus.LIVE)
        ],
        past=[
            r
            for r in rows
            if not r.offered_to_me
            and r.view.consult.status not in (ConsultStatus.ACCEPTED, ConsultStatus.LIVE)
        ],
        rows=rows,
        names=names,
        on_duty=on_duty,
        notice=notice,
        joined=done == "accepted" and number.isdigit(),
        joined_id=number if number.isdigit() else "",
    )


async def _answer(request: web.Request, action: str) -> web.StreamResponse:
    consult_id = paths.consult_id(request)
    await read_form(request)
    answer = service.accept if action == "accepted" else service.decline
    try:
        async with db(request) as session:
            await answer(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                policy=_policy(request),
                consult_id=consult_id,
            )
    except Conflict as error:
        return _refused(request, error, back="/consults")
    raise web.HTTPSeeOther(f"/consults?done={action}&id={consult_id}")


@allow(Role.SPECIALIST, page=True)
async def accept(request: web.Request) -> web.StreamResponse:
    """POST /consults/{id}/accept: take the consult offered to me; to the list (303)."""
    return await _answer(request, "accepted")


@allow(Role.SPECIALIST, page=True)
async def decline(request: web.Request) -> web.StreamResponse:
    """POST /consults/{id}/decline: say no; it goes to the next on duty; to the list (303)."""
    return await _answer(request, "declined")


# On duty -------------------------------------------------------------------------------


def safe_back(text: str) -> str:
    """A path of this site to go back to ('/' for anything else: no open redirect)."""
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        return text
    return "/"


@allow(Role.SPECIALIST, page=True)
async def set_duty(request: web.Request) -> web.StreamResponse:
    """POST /duty: go on or off duty without script; back where the form was (303)."""
    form = await read_form(request)
    wanted = form.text("on_duty", limit=8)
    if wanted not in ("yes", "no"):
        return _refused(
            request,
            InvalidInput("Choose whether to go on or off duty."),
            back=safe_back(form.text("back", limit=512)),
        )
    async with db(request) as session:
        await duty.set_on_duty(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            on_duty=wanted == "yes",
        )
    raise web.HTTPSeeOther(safe_back(form.text("back", limit=512)))
