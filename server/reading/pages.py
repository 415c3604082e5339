"""Reading pages: asking for a reading (GP), the specialist's worklist, claims without script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from dicom_tools.uids import is_valid_uid
from server import keys
from server.access import allow
from server.accounts import service as accounts
from server.archive import service as archive
from server.archive.readers import request_reader
from server.context import db, principal, recorder
from server.db import utcnow
from server.errors import Conflict, DomainError, NotFound
from server.forms import read_form
from server.identity import OrgKind, Principal, Role
from server.reading import service
from server.reading import templates as report_templates
from server.reading.models import Priority
from server.settings import Settings
from server.templates import render

_ID = r"{id:[0-9]{1,12}}"
_STUDY = r"{study:[0-9.]{1,64}}"
PRIORITY_NAMES = {"stat": "STAT", "urgent": "Urgent", "routine": "Routine"}
STATUS_FILTERS = (
    ("", "Open (waiting or claimed)"),
    ("waiting", "Waiting"),
    ("claimed", "Claimed"),
    ("mine", "Claimed by me"),
    ("overdue", "Overdue"),
    ("signed", "Signed"),
)
_LABELS = {
    "specialty": "Specialty",
    "priority": "Priority",
    "question": "Clinical question",
    "preferred_hospital": "Preferred hospital",
}


def setup_pages(app: web.Application) -> None:
    """Register the reading pages (called from server/reading/routes.py)."""
    app.router.add_post(f"/studies/{_STUDY}/reading-requests", ask)
    app.router.add_post(f"/studies/{_STUDY}/reading-requests/{_ID}/cancel", cancel)
    app.router.add_get("/worklist", worklist)
    app.router.add_post("/worklist/next", next_case)
    app.router.add_post(f"/worklist/{_ID}/claim", claim)
    app.router.add_post(f"/worklist/{_ID}/release", release)


# Words ----------------------------------------------------------------------------------


def within(minutes: int) -> str:
    """An SLA in plain words: 'within 30 minutes', 'within 4 hours', 'within 1 day'."""
    if minutes % 1440 == 0 and minutes > 1440:
        return f"within {minutes // 1440} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"within {hours} hour{'' if hours == 1 else 's'}"
    return f"within {minutes} minute{'' if minutes == 1 else 's'}"


def span(seconds: float) -> str:
    """A duration in words: '12 min', '3 h 5 min', '2 days 4 h'."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {hours} h" if hours else f"{days} {unit}"


def due_words(*, due_at: datetime, now: datetime, open_: bool = True) -> str:
    """'Overdue by 12 min' or 'Due in 25 min' ('' once the request is closed)."""
    if not open_:
        return ""
    left = (due_at - now).total_seconds()
    return f"Overdue by {span(-left)}" if left < 0 else f"Due in {span(left)}"


def sla_minutes(settings: Settings) -> dict[str, int]:
    """The SLA of each priority, in minutes, as configured."""
    return {
        "stat": settings.reading_sla_stat_minutes,
        "urgent": settings.reading_sla_urgent_minutes,
        "routine": settings.reading_sla_routine_minutes,
    }


# The ask form (study page, viewer, and its error page) ---------------------------------


@dataclass(frozen=True, slots=True)
class AskForm:
    """What the ask-for-a-reading form offers and what it holds."""

    action: str
    specialties: tuple[str, ...]
    priorities: tuple[tuple[str, str, str], ...]
    """(value, name, SLA in words) of each priority."""
    hospitals: tuple[str, ...]
    values: Mapping[str, str]
    errors: Mapping[str, str]
    form_error: str = ""


async def ask_form(
    *,
    session: AsyncSession,
    settings: Settings,
    study_uid: str,
    modalities: Sequence[str],
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    form_error: str = "",
) -> AskForm:
    """The form for one study: cardiology by default for an ECG, radiology otherwise."""
    minutes = sla_minutes(settings)
    hospitals = tuple(
        org.name
        for org in await accounts.list_orgs(session=session)
        if org.kind is OrgKind.HOSPITAL
    )
    chosen = {
        "specialty": service.default_specialty(modalities),
        "priority": Priority.ROUTINE.value,
        "question": "",
        "preferred_hospital": "",
        **(values or {}),
    }
    return AskForm(
        action=f"/studies/{study_uid}/reading-requests",
        specialties=tuple(accounts.SPECIALTIES),
        priorities=tuple(
            (p.value, PRIORITY_NAMES[p.value], within(minutes[p.value])) for p in Priority
        ),
        hospitals=hospitals,
        values=chosen,
        errors=errors or {},
        form_error=form_error,
    )


@dataclass(frozen=True, slots=True)
class StudyReading:
    """A reading request of a study, as the study page lists it."""

    id: int
    specialty: str
    priority: str
    status: str
    """waiting, claimed, signed or cancelled."""
    claimed_by: str | None
    due_at: datetime
    created_at: datetime
    overdue: bool
    due_words: str
    question: str
    report_id: int | None


async def study_readings(
    *, session: AsyncSession, caller: Principal, study_uid: str
) -> list[StudyReading]:
    """The reading requests of one study that the caller may see, most urgent first."""
    found = [
        i
        for i in await service.items(
            session=session, caller=caller, filters=service.Filters(status="all")
        )
        if i.request.study_uid == study_uid
    ]
    reports = await service.report_ids(session=session, request_ids=[i.request.id for i in found])
    return [
        StudyReading(
            id=i.request.id,
            specialty=i.request.specialty,
            priority=i.request.priority,
            status=i.status,
            claimed_by=i.holder,
            due_at=i.request.due_at,
            created_at=i.request.created_at,
            overdue=i.overdue,
            due_words=due_words(
                due_at=i.request.due_at, now=i.now, open_=i.status in ("waiting", "claimed")
            ),
            question=i.request.question,
            report_id=reports.get(i.request.id),
        )
        for i in found
    ]


def _policy(request: web.Request) -> service.Policy:
    return service.Policy.of(request.app[keys.SETTINGS])


def _not_found(study_uid: str) -> NotFound:
    return NotFound(f"No study {study_uid[:64]} in your organisation.")


def _ask_values(form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    values = dict(form)
    errors: dict[str, str] = {}
    if values["specialty"] not in accounts.SPECIALTIES:
        errors["specialty"] = "Choose the specialty that should read this study."
    if values["priority"] not in {p.value for p in Priority}:
        errors["priority"] = "Choose how soon the reading is needed."
    if len(values["question"]) > service.QUESTION_MAX:
        errors["question"] = f"Write the question in {service.QUESTION_MAX} characters or fewer."
    return values, errors


@allow(Role.GP, page=True)
async def ask(request: web.Request) -> web.StreamResponse:
    """POST /studies/{study}/reading-requests: ask for a reading; back to the study (303)."""
    study_uid = request.match_info["study"]
    if not is_valid_uid(study_uid):
        raise _not_found(study_uid)
    form = await read_form(request)
    values, errors = _ask_values(
        {
            "specialty": form.text("specialty", limit=64),
            "priority": form.text("priority", limit=16),
            "question": form.text("question", limit=service.QUESTION_MAX + 1),
            "preferred_hospital": form.text("preferred_hospital", limit=128),
        }
    )
    form_error, status = "", 422
    if not errors:
        try:
            async with db(request) as session:
                item = await service.create(
                    session=session,
                    caller=principal(request),
                    audit=recorder(request),
                    bus=request.app[keys.EVENT_BUS],
                    policy=_policy(request),
                    study_uid=study_uid,
                    specialty=values["specialty"],
                    priority=Priority(values["priority"]),
                    question=values["question"],
                    preferred_hospital=values["preferred_hospital"] or None,
                )
            raise web.HTTPSeeOther(f"/studies/{study_uid}?asked={item.request.id}#readings")
        except NotFound:
            raise
        except DomainError as error:
            form_error, status = error.message, error.status
    return await _ask_page(
        request,
        study_uid=study_uid,
        values=values,
        errors=errors,
        form_error=form_error,
        status=status,
    )


async def _ask_page(
    request: web.Request,
    *,
    study_uid: str,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    form_error: str,
    status: int,
) -> web.Response:
    async with db(request) as session:
        found = await archive.study_series(
            session=session, reader=request_reader(request), study_uid=study_uid, limit=500
        )
        if found is None:
            raise _not_found(study_uid)
        modalities = sorted({m.series.modality for m in found.series if m.series.modality})
        form = await ask_form(
            session=session,
            settings=request.app[keys.SETTINGS],
            study_uid=study_uid,
            modalities=modalities,
            values=values,
            errors=errors,
            form_error=form_error,
        )
    return render(
        request, "reading/ask.html", status=status, study=found.study, ask=form, labels=_LABELS
    )


# The worklist -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One request on the worklist page."""

    id: int
    status: str
    priority: str
    priority_name: str
    specialty: str
    clinic: str
    patient_name: str
    study_uid: str
    study_description: str
    modalities: str
    question: str
    claimed_by: str | None
    mine: bool
    due_at: datetime
    overdue: bool
    due_words: str
    report_id: int | None


@dataclass(frozen=True, slots=True)
class Counts:
    """How many open requests wait, are claimed, are overdue, and are mine."""

    waiting: int
    claimed: int
    overdue: int
    mine: int


def _row(item: service.Item, caller: Principal, report_id: int | None) -> Row:
    r = item.request
    return Row(
        id=r.id,
        status=item.status,
        priority=r.priority,
        priority_name=PRIORITY_NAMES.get(r.priority, r.priority),
        specialty=r.specialty,
        clinic=item.clinic,
        patient_name=item.patient_name,
        study_uid=r.study_uid,
        study_description=item.study_description,
        modalities=", ".join(item.modalities) or "—",
        question=r.question,
        claimed_by=item.holder,
        mine=item.holder == caller.username,
        due_at=r.due_at,
        overdue=item.overdue,
        due_words=due_words(
            due_at=r.due_at, now=item.now, open_=item.status in ("waiting", "claimed")
        ),
        report_id=report_id,
    )


def _filters(request: web.Request, caller: Principal) -> dict[str, str]:
    query = request.query
    chosen = {
        "specialty": query.get("specialty", "")[:64],
        "priority": query.get("priority", "")[:16],
        "clinic": query.get("clinic", "")[:128],
        "status": query.get("status", "")[:16],
    }
    if chosen["specialty"] not in caller.specialties:
        chosen["specialty"] = ""
    if chosen["priority"] not in PRIORITY_NAMES:
        chosen["priority"] = ""
    if chosen["status"] not in {value for value, _ in STATUS_FILTERS}:
        chosen["status"] = ""
    return chosen


@allow(Role.GP, page=True)
async def cancel(request: web.Request) -> web.StreamResponse:
    """POST /studies/{study}/reading-requests/{id}/cancel: withdraw an open request (303)."""
    study_uid = request.match_info["study"]
    request_id = int(request.match_info["id"])
    await read_form(request)  # the CSRF token is checked by the middleware
    async with db(request) as session:
        await service.cancel(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            request_id=request_id,
        )
    raise web.HTTPSeeOther(f"/studies/{study_uid}?cancelled={request_id}#readings")


@allow(Role.SPECIALIST, page=True)
async def worklist(request: web.Request) -> web.StreamResponse:
    """GET /worklist: the open requests of my specialties, most urgent first, with filters."""
    caller = principal(request)
    chosen = _filters(request, caller)
    filters = service.Filters(
        specialty=chosen["specialty"] or None,
        priority=Priority(chosen["priority"]) if chosen["priority"] else None,
        clinic=chosen["clinic"] or None,
        status=chosen["status"] or None,
    )
    async with db(request) as session:
        open_items = await service.items(session=session, caller=caller)
        shown = (
            open_items
            if filters == service.Filters()
            else await service.items(session=session, caller=caller, filters=filters)
        )
        reports = await service.report_ids(
            session=session, request_ids=[i.request.id for i in shown]
        )
    counts = Counts(
        waiting=sum(1 for i in open_items if i.status == "waiting"),
        claimed=sum(1 for i in open_items if i.status == "claimed"),
        overdue=sum(1 for i in open_items if i.overdue),
        mine=sum(1 for i in open_items if i.holder == caller.username),
    )
    clinics = sorted({i.clinic for i in open_items} | ({chosen["clinic"]} - {""}))
    notice = _notice(request)
    return render(
        request,
        "reading/worklist.html",
        rows=[_row(i, caller, reports.get(i.request.id)) for i in shown],
        counts=counts,
        chosen=chosen,
        query=urlencode({k: v for k, v in chosen.items() if v}),
        clinics=clinics,
        priorities=PRIORITY_NAMES,
        statuses=STATUS_FILTERS,
        notice=notice,
        now=utcnow(),
    )


_NOTICES = {
    "claimed": "You claimed reading request {id}. It is yours while you work on it.",
    "released": "You released reading request {id}; it is back in the queue.",
    "nothing": "Nothing is waiting for your specialties.",
}


def _notice(request: web.Request) -> str:
    kind = request.query.get("done", "")
    number = request.query.get("id", "")
    if kind not in _NOTICES or (number and not number.isdigit()):
        return ""
    return _NOTICES[kind].format(id=number[:12])


async def _back(request: web.Request, **extra: str) -> str:
    """The worklist with the filters the form came from (its `back` field), and a notice."""
    form = await read_form(request)
    kept = [
        (k, v)
        for k, v in parse_qsl(form.text("back", limit=512))
        if k in ("specialty", "priority", "clinic", "status")
    ]
    query = urlencode(kept + list(extra.items()))
    return f"/worklist?{query}" if query else "/worklist"


@allow(Role.SPECIALIST, page=True)
async def claim(request: web.Request) -> web.StreamResponse:
    """POST /worklist/{id}/claim: claim without script; back to the worklist (303)."""
    request_id = int(request.match_info["id"])
    try:
        async with db(request) as session:
            await service.claim(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                policy=_policy(request),
                request_id=request_id,
            )
    except Conflict as error:
        return await _refused(request, error)
    raise web.HTTPSeeOther(await _back(request, done="claimed", id=str(request_id)))


@allow(Role.SPECIALIST, page=True)
async def release(request: web.Request) -> web.StreamResponse:
    """POST /worklist/{id}/release: give my claim back; back to the worklist (303)."""
    request_id = int(request.match_info["id"])
    try:
        async with db(request) as session:
            await service.release(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                bus=request.app[keys.EVENT_BUS],
                request_id=request_id,
            )
    except Conflict as error:
        return await _refused(request, error)
    raise web.HTTPSeeOther(await _back(request, done="released", id=str(request_id)))


@allow(Role.SPECIALIST, page=True)
async def next_case(request: web.Request) -> web.StreamResponse:
    """POST /worklist/next: claim the most urgent waiting request and open it (303)."""
    async with db(request) as session:
        found = await service.claim_next(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
        )
    if found is None:
        raise web.HTTPSeeOther(await _back(request, done="nothing"))
    raise web.HTTPSeeOther(viewer_url(found.study_uid, found.id))


def viewer_url(study_uid: str, request_id: int) -> str:
    """The viewer of a request's study with its report panel."""
    return f"/studies/{study_uid}/view?request={request_id}"


async def _refused(request: web.Request, error: DomainError) -> web.Response:
    return render(
        request,
        "reading/refused.html",
        status=error.status,
        message=error.message,
    )


# The report panel beside the viewer ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Panel:
    """The reading request beside the viewer: the editor for its holder, a note for others."""

    id: int
    study_uid: str
    specialty: str
    priority: str
    priority_name: str
    clinic: str
    question: str
    requested_by: str
    status: str
    claimed_by: str | None
    due_at: datetime
    overdue: bool
    due_words: str
    lease_expires_at: datetime | None
    report_id: int | None
    editable: bool
    """True for the specialist holding the claim: the editor is shown."""
    kind: str
    fields: Markup | None
    saved_at: datetime | None


async def report_panel(
    *, session: AsyncSession, caller: Principal, request_id: int, study_uid: str
) -> Panel:
    """The panel of one request of this study (NotFound for another study's or an unseen one)."""
    found = await service.item(session=session, caller=caller, request_id=request_id)
    r = found.request
    if r.study_uid != study_uid:
        raise NotFound(f"No reading request {request_id} for this study.")
    reports = await service.report_ids(session=session, request_ids=[request_id])
    editable = (
        caller.role is Role.SPECIALIST
        and found.holder is not None
        and r.claimed_by == caller.user_id
    )
    kind = report_templates.kind_of(modalities=found.modalities, specialty=r.specialty)
    fields = None
    saved_at = None
    if editable:
        draft = await service.draft(session=session, caller=caller, request_id=request_id)
        saved_at = draft.updated_at if draft is not None else None
        if draft is None:  # a new report starts from its kind's template
            findings, impression = await service.starting_text(
                session=session, kind=kind, item=found, measurements={}
            )
        else:
            findings, impression = draft.findings, draft.impression
        fields = report_templates.render_fields(
            kind=kind,
            findings=findings,
            impression=impression,
            measurements=draft.measurements if draft is not None else {},
        )
    return Panel(
        id=r.id,
        study_uid=r.study_uid,
        specialty=r.specialty,
        priority=r.priority,
        priority_name=PRIORITY_NAMES.get(r.priority, r.priority),
        clinic=found.clinic,
        question=r.question,
        requested_by=found.requested_by,
        status=found.status,
        claimed_by=found.holder,
        due_at=r.due_at,
        overdue=found.overdue,
        due_words=due_words(
            due_at=r.due_at, now=found.now, open_=found.status in ("waiting", "claimed")
        ),
        lease_expires_at=r.lease_expires_at if found.holder else None,
        report_id=reports.get(request_id),
        editable=editable,
        kind=kind,
        fields=fields,
        saved_at=saved_at,
    )
