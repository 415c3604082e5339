"""Reading requests: asking, the specialty worklist, leased claims, drafts and the SLA watch.

A claim is one conditional UPDATE (on PostgreSQL preceded, for "next case", by
`SELECT … FOR UPDATE SKIP LOCKED`), so that two readers never hold one request, on any
database and across server processes: the row changes only if it is still free (or its
holder's lease has lapsed) when the database applies the change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    ScalarSelect,
    Select,
    and_,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.accounts.models import Organisation, User, UserSpecialty
from server.archive import service as archive
from server.archive.models import Series, Study
from server.audit.service import Recorder
from server.consults import duty
from server.db import after_commit, utcnow
from server.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from server.events import channels
from server.events.bus import EventBus
from server.identity import Principal, Role
from server.reading import templates as report_texts
from server.reading.models import (
    OPEN,
    Priority,
    ReadingRequest,
    ReportDraft,
    ReportTemplate,
    Status,
)
from server.reports.models import SignedReport
from server.settings import Settings

log = logging.getLogger(__name__)
QUESTION_MAX = 2000
NEXT_CASE_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Policy:
    """The deployment's service levels: the SLA of each priority and the claim lease."""

    sla: dict[Priority, timedelta]
    lease: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The policy configured in settings."""
        return cls(
            sla={
                Priority.STAT: timedelta(minutes=settings.reading_sla_stat_minutes),
                Priority.URGENT: timedelta(minutes=settings.reading_sla_urgent_minutes),
                Priority.ROUTINE: timedelta(minutes=settings.reading_sla_routine_minutes),
            },
            lease=timedelta(minutes=settings.reading_lease_minutes),
        )


@dataclass(frozen=True, slots=True)
class Item:
    """A reading request as worklists and the requesting clinic see it."""

    request: ReadingRequest
    clinic: str
    claimed_by: str | None
    requested_by: str
    patient_name: str
    study_description: str
    modalities: tuple[str, ...]
    now: datetime

    @property
    def status(self) -> str:
        """The status a reader sees: a claim whose lease lapsed is waiting again."""
        if self.request.status == Status.CLAIMED and self.lapsed:
            return Status.WAITING.value
        return self.request.status

    @property
    def lapsed(self) -> bool:
        """True for a claim whose lease has run out."""
        expires = self.request.lease_expires_at
        return self.request.status == Status.CLAIMED and expires is not None and expires < self.now

    @property
    def holder(self) -> str | None:
        """Who holds the claim now (nobody once it lapsed)."""
        return None if self.lapsed or self.request.status != Status.CLAIMED else self.claimed_by

    @property
    def overdue(self) -> bool:
        """True while the request is open past its due time."""
        return self.request.status in OPEN and self.request.due_at < self.now

    def event(self) -> dict[str, Any]:
        """The JSON of this item for worklist events (no patient data beyond the worklist's)."""
        r = self.request
        return {
            "id": r.id,
            "status": self.status,
            "priority": r.priority,
            "specialty": r.specialty,
            "due_at": _iso(r.due_at),
            "overdue": self.overdue,
            "clinic": self.clinic,
            "claimed_by": self.holder,
            "lease_expires_at": _iso(r.lease_expires_at) if self.holder else None,
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """A request just claimed (or reassigned): who holds it, until when."""

    id: int
    study_uid: str
    claimed_by: str
    lease_expires_at: datetime
    status: str = Status.CLAIMED.value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


# Asking ----------------------------------------------------------------------------


def default_specialty(modalities: Sequence[str]) -> str:
    """Cardiology for an ECG study, radiology for images."""
    return "cardiology" if "ECG" in modalities else "radiology"


async def create(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    study_uid: str,
    specialty: str | None,
    priority: Priority,
    question: str,
    preferred_hospital: str | None = None,
) -> Item:
    """Ask a specialty to read one of the caller's clinic's studies; audited, announced."""
    study = await session.scalar(
        select(Study).where(Study.study_uid == study_uid, archive.visible_studies(caller))
    )
    if study is None:
        raise NotFound(f"No study {study_uid[:64]} in your organisation.")
    modalities = await _modalities(session, study.id)
    chosen = specialty or default_specialty(modalities)
    if chosen not in accounts.SPECIALTIES:
        raise InvalidInput(
            f"Unknown specialty {chosen[:64]!r}.", details={"allowed": list(accounts.SPECIALTIES)}
        )
    question = question.strip()
    if len(question) > QUESTION_MAX:
        raise InvalidInput(f"The clinical question is longer than {QUESTION_MAX} characters.")
    preferred = None
    if preferred_hospital:
        preferred = await session.scalar(
            select(Organisation.id).where(Organisation.name == preferred_hospital)
        )
        if preferred is None:
            raise InvalidInput(f"No hospital named {preferred_hospital[:128]!r}.")
    now = utcnow()
    request = ReadingRequest(
        org_id=caller.org_id,
        study_id=study.id,
        study_uid=study.study_uid,
        requested_by=caller.user_id,
        specialty=chosen,
        priority=priority.value,
        priority_rank=priority.rank,
        question=question,
        preferred_org_id=preferred,
        status=Status.WAITING.value,
        created_at=now,
        due_at=now + policy.sla[priority],
    )
    session.add(request)
    await session.flush()
    await audit.record(
        session,
        action="reading.request",
        object_type="reading_request",
        object_id=request.id,
        org_id=caller.org_id,
        details={"study": study.study_uid, "specialty": chosen, "priority": priority.value},
    )
    item = Item(
        request,
        caller.org_name,
        None,
        caller.username,
        study.patient_name or "",
        study.study_description or "",
        modalities,
        now,
    )
    announce(session, bus, "reading.new", item)
    return item


async def _modalities(session: AsyncSession, study_id: int) -> tuple[str, ...]:
    rows = await session.scalars(select(Series.modality).where(Series.study_id == study_id))
    return tuple(sorted({m for m in rows if m}))


def announce(session: AsyncSession, bus: EventBus, kind: str, item: Item) -> None:
    """After the commit: tell the specialty's readers and the requesting clinic."""
    _announce(session, bus, kind, item.request.specialty, item.request.org_id, item.event())


def _announce(
    session: AsyncSession,
    bus: EventBus,
    kind: str,
    specialty: str,
    org_id: int,
    request: dict[str, Any],
) -> None:
    event = {"type": kind, "request": request}

    async def publish() -> None:
        for channel in (channels.specialty(specialty), channels.org(org_id)):
            try:
                await bus.publish(channel, event)
            except Exception:  # committed already; worklists re-sync on their next load
                log.warning("could not announce %s on %s", kind, channel, exc_info=True)

    after_commit(session, publish)


# Reading the queue ------------------------------------------------------------------


def readable_requests(caller: Principal) -> ColumnElement[bool]:
    """SQL condition on ReadingRequest: the requests this caller may see."""
    if caller.role is Role.SPECIALIST:
        return ReadingRequest.specialty.in_(caller.specialties)
    if caller.role is Role.GP:
        return ReadingRequest.org_id == caller.org_id
    if caller.role is Role.ADMIN:
        return ReadingRequest.id.is_not(None)
    return ReadingRequest.id.is_(None)


@dataclass(frozen=True, slots=True)
class Filters:
    """What a worklist shows: by specialty, priority, clinic and status."""

    specialty: str | None = None
    priority: Priority | None = None
    clinic: str | None = None
    status: str | None = None
    """waiting, claimed, signed, overdue, mine, or None for every open request."""
    limit: int = 500


async def items(
    *, session: AsyncSession, caller: Principal, filters: Filters = Filters()
) -> list[Item]:
    """The requests the caller may see, most urgent first (priority, then due time)."""
    now = utcnow()
    where: list[ColumnElement[bool]] = [readable_requests(caller)]
    lapsed = and_(ReadingRequest.status == Status.CLAIMED, ReadingRequest.lease_expires_at < now)
    held = and_(ReadingRequest.status == Status.CLAIMED, ReadingRequest.lease_expires_at >= now)
    match filters.status:
        case None:
            where.append(ReadingRequest.status.in_(OPEN))
        case "waiting":
            where.append(or_(ReadingRequest.status == Status.WAITING, lapsed))
        case "claimed":
            where.append(held)
        case "mine":
            where.append(and_(held, ReadingRequest.claimed_by == caller.user_id))
        case "overdue":
            where += [ReadingRequest.status.in_(OPEN), ReadingRequest.due_at < now]
        case "signed" | "cancelled":
            where.append(ReadingRequest.status == filters.status)
        case "all":
            pass
        case other:
            raise InvalidInput(f"Unknown status {other[:32]!r}.")
    if filters.specialty:
        where.append(ReadingRequest.specialty == filters.specialty)
    if filters.priority:
        where.append(ReadingRequest.priority == filters.priority.value)
    if filters.clinic:
        where.append(Organisation.name == filters.clinic)
    return await _items_where(session, *where, limit=filters.limit)


async def item(*, session: AsyncSession, caller: Principal, request_id: int) -> Item:
    """One request the caller may see; NotFound otherwise."""
    found = await _item_where(session, ReadingRequest.id == request_id, readable_requests(caller))
    if found is None:
        raise NotFound(f"No reading request {request_id}.")
    return found


async def _item_where(session: AsyncSession, *where: ColumnElement[bool]) -> Item | None:
    found = await _items_where(session, *where, limit=1)
    return found[0] if found else None


async def _items_where(
    session: AsyncSession, *where: ColumnElement[bool], limit: int
) -> list[Item]:
    """The requests matching where with their clinic, people and study, most urgent first."""
    now = utcnow()
    holder = User.__table__.alias("holder")
    asker = User.__table__.alias("asker")
    rows = (
        await session.execute(
            select(
                ReadingRequest,
                Organisation.name,
                holder.c.username,
                asker.c.username,
                Study.patient_name,
                Study.study_description,
            )
            .join(Organisation, Organisation.id == ReadingRequest.org_id)
            .join(Study, Study.id == ReadingRequest.study_id)
            .join(asker, asker.c.id == ReadingRequest.requested_by)
            .outerjoin(holder, holder.c.id == ReadingRequest.claimed_by)
            .where(*where)
            .order_by(ReadingRequest.priority_rank, ReadingRequest.due_at, ReadingRequest.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    ).all()
    modalities: dict[int, set[str]] = {}
    study_ids = {row[0].study_id for row in rows}
    if study_ids:
        for study_id, modality in await session.execute(
            select(Series.study_id, Series.modality).where(Series.study_id.in_(study_ids))
        ):
            if modality:
                modalities.setdefault(study_id, set()).add(modality)
    return [
        Item(
            r,
            clinic,
            holder_name,
            asker_name,
            patient or "",
            description or "",
            tuple(sorted(modalities.get(r.study_id, ()))),
            now,
        )
        for r, clinic, holder_name, asker_name, patient, description in rows
    ]


# Claims ----------------------------------------------------------------------------


def _free(now: datetime, reader_id: int) -> ColumnElement[bool]:
    """A request the reader may take now: waiting, theirs, or held on a lapsed lease."""
    return or_(
        ReadingRequest.status == Status.WAITING,
        and_(
            ReadingRequest.status == Status.CLAIMED,
            or_(ReadingRequest.claimed_by == reader_id, ReadingRequest.lease_expires_at < now),
        ),
    )


def _claim_values(now: datetime, reader_id: int, lease: timedelta) -> dict[str, Any]:
    return {
        "status": Status.CLAIMED.value,
        "claimed_by": reader_id,
        "claimed_at": now,
        "lease_expires_at": now + lease,
        "first_claimed_at": func.coalesce(ReadingRequest.first_claimed_at, now),
    }


def _specialist(caller: Principal) -> None:
    if caller.role is not Role.SPECIALIST or not caller.specialties:
        raise PermissionDenied("Only specialists read requests of their specialties.")


_CLAIMED = (
    ReadingRequest.id,
    ReadingRequest.study_uid,
    ReadingRequest.org_id,
    ReadingRequest.specialty,
    ReadingRequest.priority,
    ReadingRequest.due_at,
    ReadingRequest.lease_expires_at,
    select(Organisation.name)
    .where(Organisation.id == ReadingRequest.org_id)
    .correlate(ReadingRequest)
    .scalar_subquery()
    .label("clinic"),
)
"""What a claim's UPDATE returns: enough to answer and announce it without reading it again
(the clinic's name too, by a subquery in RETURNING)."""


async def claim(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    request_id: int,
) -> Claim:
    """Take one request for the caller, for a lease; Conflict if someone else holds it."""
    _specialist(caller)
    now = utcnow()
    won = (
        await session.execute(
            update(ReadingRequest)
            .where(
                ReadingRequest.id == request_id,
                ReadingRequest.specialty.in_(caller.specialties),
                _free(now, caller.user_id),
            )
            .values(**_claim_values(now, caller.user_id, policy.lease))
            .returning(*_CLAIMED)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if won is None:
        current = await item(session=session, caller=caller, request_id=request_id)
        raise _not_claimable(current)
    return await _claimed(session, caller, audit, bus, won, now)


def _not_claimable(current: Item) -> Conflict:
    if current.request.status == Status.SIGNED:
        return Conflict(f"Reading request {current.request.id} is already signed.")
    if current.request.status == Status.CANCELLED:
        return Conflict(f"Reading request {current.request.id} was cancelled.")
    until = _iso(current.request.lease_expires_at)
    return Conflict(
        f"Reading request {current.request.id} is claimed by {current.claimed_by} until {until}.",
        details={"claimed_by": current.claimed_by, "lease_expires_at": until},
    )


async def _claimed(
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    won: Row[int, str, int, str, str, datetime, datetime | None, str],
    now: datetime,
) -> Claim:
    """Audit and announce a claim from the row its UPDATE returned."""
    request_id, study_uid, org_id, specialty, priority, due_at, lease_expires_at, clinic = won
    assert lease_expires_at is not None
    _announce(
        session,
        bus,
        "reading.claimed",
        specialty,
        org_id,
        {
            "id": request_id,
            "status": Status.CLAIMED.value,
            "priority": priority,
            "specialty": specialty,
            "due_at": _iso(due_at),
            "overdue": due_at < now,
            "clinic": clinic or "",
            "claimed_by": caller.username,
            "lease_expires_at": _iso(lease_expires_at),
        },
    )
    await audit.record(  # last before the commit: the audit chain's lock is held briefly
        session,
        action="reading.claim",
        object_type="reading_request",
        object_id=request_id,
        org_id=org_id,
        details={"lease_expires_at": _iso(lease_expires_at)},
    )
    return Claim(request_id, study_uid, caller.username, lease_expires_at)


async def claim_next(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
) -> Claim | None:
    """Claim the most urgent waiting request of the caller's specialties; None if none waits.

    The candidates are the most urgent waiting request and the most urgent claim whose
    lease lapsed, each found through its own index. PostgreSQL picks them with
    `FOR UPDATE SKIP LOCKED`, so concurrent readers take different rows; SQLite picks
    the candidate inside the UPDATE itself, under its single writer's lock.
    """
    _specialist(caller)
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(NEXT_CASE_ATTEMPTS):
        now = utcnow()
        waiting = _waiting(now)
        if postgres:
            target: ColumnElement[bool] = ReadingRequest.id == _locked_candidate(caller, now)
        else:
            target = ReadingRequest.id == _candidate(caller, now).scalar_subquery()
        won = (
            await session.execute(
                update(ReadingRequest)
                .where(target, waiting)
                .values(**_claim_values(now, caller.user_id, policy.lease))
                .returning(*_CLAIMED)
                .execution_options(synchronize_session=False)
            )
        ).first()
        if won is not None:
            return await _claimed(session, caller, audit, bus, won, now)
        if await session.scalar(_candidate(caller, now)) is None:
            return None
    return None


def _waiting(now: datetime) -> ColumnElement[bool]:
    """Free for anyone: waiting, or held on a lease that has lapsed."""
    return or_(
        ReadingRequest.status == Status.WAITING,
        and_(ReadingRequest.status == Status.CLAIMED, ReadingRequest.lease_expires_at < now),
    )


def _most_urgent(caller: Principal, *where: ColumnElement[bool]) -> Select[int, int, datetime]:
    return (
        select(ReadingRequest.id, ReadingRequest.priority_rank, ReadingRequest.due_at)
        .where(ReadingRequest.specialty.in_(caller.specialties), *where)
        .order_by(ReadingRequest.priority_rank, ReadingRequest.due_at, ReadingRequest.id)
        .limit(1)
    )


def _waiting_first(caller: Principal) -> Select[int, int, datetime]:
    return _most_urgent(caller, ReadingRequest.status == Status.WAITING)


def _lapsed_first(caller: Principal, now: datetime) -> Select[int, int, datetime]:
    return _most_urgent(
        caller, ReadingRequest.status == Status.CLAIMED, ReadingRequest.lease_expires_at < now
    )


def _candidate(caller: Principal, now: datetime) -> Select[int]:
    """The id of the most urgent free request (one statement, for SQLite's UPDATE)."""
    both = union_all(
        select(_waiting_first(caller).subquery()), select(_lapsed_first(caller, now).subquery())
    ).subquery()
    return select(both.c.id).order_by(both.c.priority_rank, both.c.due_at, both.c.id).limit(1)


def _locked_candidate(caller: Principal, now: datetime) -> ScalarSelect[int]:
    """PostgreSQL: the most urgent free request nobody else is taking, locked for us.

    Each candidate (waiting; held on a lapsed lease) is a `FOR UPDATE SKIP LOCKED` CTE
    found through its own index, so the claim is one statement.
    """
    waiting = _waiting_first(caller).with_for_update(skip_locked=True).cte("waiting_first")
    lapsed = _lapsed_first(caller, now).with_for_update(skip_locked=True).cte("lapsed_first")
    both = union_all(select(waiting), select(lapsed)).subquery()
    return (
        select(both.c.id)
        .order_by(both.c.priority_rank, both.c.due_at, both.c.id)
        .limit(1)
        .scalar_subquery()
    )


async def renew(
    *, session: AsyncSession, caller: Principal, policy: Policy, request_id: int
) -> Item:
    """Extend the caller's lease while they work; Conflict once it has lapsed or moved on."""
    now = utcnow()
    held = await session.scalar(
        update(ReadingRequest)
        .where(
            ReadingRequest.id == request_id,
            ReadingRequest.status == Status.CLAIMED,
            ReadingRequest.claimed_by == caller.user_id,
            ReadingRequest.lease_expires_at >= now,
        )
        .values(lease_expires_at=now + policy.lease)
        .returning(ReadingRequest.id)
        .execution_options(synchronize_session=False)
    )
    current = await item(session=session, caller=caller, request_id=request_id)
    if held is None:
        raise _lost(current, caller)
    return current


def _lost(current: Item, caller: Principal) -> Conflict:
    if current.request.status == Status.CLAIMED and current.request.claimed_by == caller.user_id:
        return Conflict(
            f"Your claim on reading request {current.request.id} lapsed; claim it again.",
            details={"reason": "lease_lapsed"},
        )
    if current.request.status == Status.SIGNED:
        return Conflict(f"Reading request {current.request.id} is already signed.")
    return Conflict(
        f"You do not hold reading request {current.request.id}; claim it first.",
        details={"reason": "not_holder", "claimed_by": current.holder},
    )


async def release(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, request_id: int
) -> Item:
    """Give a claimed request back to the queue (its holder, or an administrator)."""
    who: ColumnElement[bool] = (
        ReadingRequest.id.is_not(None)
        if caller.role is Role.ADMIN
        else ReadingRequest.claimed_by == caller.user_id
    )
    released = await session.scalar(
        update(ReadingRequest)
        .where(ReadingRequest.id == request_id, ReadingRequest.status == Status.CLAIMED, who)
        .values(
            status=Status.WAITING.value, claimed_by=None, claimed_at=None, lease_expires_at=None
        )
        .returning(ReadingRequest.id)
        .execution_options(synchronize_session=False)
    )
    current = await item(session=session, caller=caller, request_id=request_id)
    if released is None:
        raise _lost(current, caller)
    await audit.record(
        session,
        action="reading.release",
        object_type="reading_request",
        object_id=request_id,
        org_id=current.request.org_id,
    )
    announce(session, bus, "reading.released", current)
    return current


async def cancel(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, request_id: int
) -> Item:
    """The requesting clinic withdraws an open request; its study closes to the specialty again."""
    if caller.role is not Role.GP:
        raise PermissionDenied("Only the requesting clinic's GPs cancel a reading request.")
    cancelled = await session.scalar(
        update(ReadingRequest)
        .where(
            ReadingRequest.id == request_id,
            ReadingRequest.org_id == caller.org_id,
            ReadingRequest.status.in_(OPEN),
        )
        .values(status=Status.CANCELLED.value, lease_expires_at=None)
        .returning(ReadingRequest.id)
        .execution_options(synchronize_session=False)
    )
    current = await item(session=session, caller=caller, request_id=request_id)
    if cancelled is None:
        raise Conflict(f"Reading request {request_id} is {current.request.status}; it stays so.")
    await audit.record(
        session,
        action="reading.cancel",
        object_type="reading_request",
        object_id=request_id,
        org_id=caller.org_id,
    )
    announce(session, bus, "reading.cancelled", current)
    return current


async def reassign(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    request_id: int,
    username: str,
) -> Item:
    """An administrator gives an open request to a named reader of its specialty."""
    if caller.role is not Role.ADMIN:
        raise PermissionDenied("Only administrators reassign reading requests.")
    current = await item(session=session, caller=caller, request_id=request_id)
    reader = await session.scalar(
        select(User)
        .join(UserSpecialty, UserSpecialty.user_id == User.id)
        .where(
            User.username == username,
            User.is_active.is_(True),
            User.role == Role.SPECIALIST,
            UserSpecialty.specialty == current.request.specialty,
        )
    )
    if reader is None:
        raise InvalidInput(
            f"{username[:64]!r} is not an active {current.request.specialty} reader."
        )
    now = utcnow()
    moved = await session.scalar(
        update(ReadingRequest)
        .where(ReadingRequest.id == request_id, ReadingRequest.status.in_(OPEN))
        .values(**_claim_values(now, reader.id, policy.lease))
        .returning(ReadingRequest.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        raise _not_claimable(current)
    current = await item(session=session, caller=caller, request_id=request_id)
    await audit.record(
        session,
        action="reading.reassign",
        object_type="reading_request",
        object_id=request_id,
        org_id=current.request.org_id,
        details={"to": reader.username},
    )
    announce(session, bus, "reading.claimed", current)
    return current


async def held(*, session: AsyncSession, caller: Principal, request_id: int) -> Item:
    """The request, if the caller holds it on a live lease; Conflict (or NotFound) otherwise."""
    current = await item(session=session, caller=caller, request_id=request_id)
    if current.holder is None or current.request.claimed_by != caller.user_id:
        raise _lost(current, caller)
    return current


# Drafts ------------------------------------------------------------------------------


async def save_draft(
    *,
    session: AsyncSession,
    caller: Principal,
    policy: Policy,
    request_id: int,
    findings: str,
    impression: str,
    measurements: dict[str, Any],
) -> ReportDraft:
    """Autosave the holder's draft; renews the lease."""
    await renew(session=session, caller=caller, policy=policy, request_id=request_id)
    draft = await session.get(ReportDraft, request_id)
    if draft is None:
        draft = ReportDraft(request_id=request_id, author_id=caller.user_id)
        session.add(draft)
    draft.author_id = caller.user_id
    draft.findings = findings
    draft.impression = impression
    draft.measurements = measurements
    draft.updated_at = utcnow()
    await session.flush()
    return draft


async def draft(*, session: AsyncSession, caller: Principal, request_id: int) -> ReportDraft | None:
    """The draft of a request the caller may see, if any."""
    await item(session=session, caller=caller, request_id=request_id)
    return await session.get(ReportDraft, request_id)


# The SLA watch -------------------------------------------------------------------


async def escalate_overdue(*, session: AsyncSession, audit: Recorder, bus: EventBus) -> list[int]:
    """Mark open requests past due as overdue, once each (safe with several processes).

    The specialty's worklists hear it, and so do, on their own channels, the readers of
    that specialty who are on duty and every administrator.
    """
    now = utcnow()
    ids = list(
        await session.scalars(
            update(ReadingRequest)
            .where(
                ReadingRequest.status.in_(OPEN),
                ReadingRequest.due_at < now,
                ReadingRequest.overdue_at.is_(None),
            )
            .values(overdue_at=now)
            .returning(ReadingRequest.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not ids:
        return []
    admins = list(
        await session.scalars(
            select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
    )
    for request_id in ids:
        found = await _item_where(session, ReadingRequest.id == request_id)
        assert found is not None
        on_duty = await duty.on_duty_for(session=session, specialty=found.request.specialty)
        await audit.record(
            session,
            action="reading.overdue",
            object_type="reading_request",
            object_id=request_id,
            org_id=found.request.org_id,
            details={
                "due_at": _iso(found.request.due_at),
                "priority": found.request.priority,
                "notified": len(admins) + len(on_duty),
            },
        )
        announce(session, bus, "reading.overdue", found)
        after_commit(session, partial(_tell_people, bus, [*on_duty, *admins], found.event()))
    return ids


async def _tell_people(bus: EventBus, user_ids: list[int], request: dict[str, Any]) -> None:
    """Tell each of these users (the on-duty readers, the admins) of an overdue request."""
    for user_id in dict.fromkeys(user_ids):
        try:
            await bus.publish(
                channels.user(user_id), {"type": "reading.overdue", "request": request}
            )
        except Exception:  # committed already; the worklist shows it as overdue anyway
            log.warning("could not tell user %s of an overdue request", user_id, exc_info=True)


async def lapse_claims(*, session: AsyncSession, audit: Recorder, bus: EventBus) -> list[int]:
    """Return claims whose lease ran out to the queue, and say so to the worklists."""
    now = utcnow()
    ids = list(
        await session.scalars(
            update(ReadingRequest)
            .where(ReadingRequest.status == Status.CLAIMED, ReadingRequest.lease_expires_at < now)
            .values(
                status=Status.WAITING.value, claimed_by=None, claimed_at=None, lease_expires_at=None
            )
            .returning(ReadingRequest.id)
            .execution_options(synchronize_session=False)
        )
    )
    for request_id in ids:
        found = await _item_where(session, ReadingRequest.id == request_id)
        assert found is not None
        await audit.record(
            session,
            action="reading.lapse",
            object_type="reading_request",
            object_id=request_id,
            org_id=found.request.org_id,
        )
        announce(session, bus, "reading.released", found)
    return ids


# Turnaround ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turnaround:
    """Median minutes from request to claim and to signature, for one priority and specialty."""

    specialty: str
    priority: str
    signed: int
    open: int
    overdue: int
    to_claim_minutes: float | None
    to_sign_minutes: float | None


async def turnaround(*, session: AsyncSession, since: datetime) -> list[Turnaround]:
    """Turnaround of the requests made since a moment, by specialty and priority."""
    rows = (
        await session.execute(
            select(
                ReadingRequest.specialty,
                ReadingRequest.priority,
                ReadingRequest.status,
                ReadingRequest.created_at,
                ReadingRequest.first_claimed_at,
                ReadingRequest.signed_at,
                ReadingRequest.due_at,
            ).where(ReadingRequest.created_at >= since)
        )
    ).all()
    now = utcnow()
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row[0], row[1]), []).append(row)
    result = []
    for (specialty, priority), members in sorted(
        groups.items(), key=lambda g: (g[0][0], Priority(g[0][1]).rank)
    ):
        to_claim = [(m[4] - m[3]).total_seconds() / 60 for m in members if m[4] is not None]
        to_sign = [(m[5] - m[3]).total_seconds() / 60 for m in members if m[5] is not None]
        result.append(
            Turnaround(
                specialty=specialty,
                priority=priority,
                signed=sum(1 for m in members if m[2] == Status.SIGNED),
                open=sum(1 for m in members if m[2] in OPEN),
                overdue=sum(1 for m in members if m[2] in OPEN and m[6] < now),
                to_claim_minutes=_median(to_claim),
                to_sign_minutes=_median(to_sign),
            )
        )
    return result


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return round(ordered[middle], 1)
    return round((ordered[middle - 1] + ordered[middle]) / 2, 1)


async def report_ids(*, session: AsyncSession, request_ids: Sequence[int]) -> dict[int, int]:
    """The signed report of each of these requests that has one."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(SignedReport.request_id, SignedReport.id).where(
            SignedReport.request_id.in_(request_ids), SignedReport.kind == "report"
        )
    )
    return {request_id: report_id for request_id, report_id in rows}


# Report templates -----------------------------------------------------------------------


async def report_template(*, session: AsyncSession, kind: str) -> tuple[str, str, bool]:
    """(findings, impression) jinja2 text of a kind of report, and whether it was changed."""
    if kind not in report_texts.DEFAULT_TEXT:
        raise NotFound(f"No report template {kind[:32]!r}.")
    stored = await session.get(ReportTemplate, kind)
    if stored is None:
        findings, impression = report_texts.DEFAULT_TEXT[kind]
        return findings, impression, False
    return stored.findings, stored.impression, True


async def save_report_template(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    kind: str,
    findings: str,
    impression: str,
) -> None:
    """An administrator changes a report template's text; checked in the sandbox, audited."""
    if caller.role is not Role.ADMIN:
        raise PermissionDenied("Only administrators change report templates.")
    await report_template(session=session, kind=kind)
    for label, text in (("findings", findings), ("impression", impression)):
        problem = report_texts.template_problem(text)
        if problem is not None:
            raise InvalidInput(f"The {label} template: {problem}", details={"field": label})
    stored = await session.get(ReportTemplate, kind)
    if stored is None:
        stored = ReportTemplate(kind=kind)
        session.add(stored)
    stored.findings = findings
    stored.impression = impression
    stored.updated_by = caller.user_id
    stored.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, action="report_template.update", object_type="report_template", object_id=kind
    )


async def starting_text(
    *, session: AsyncSession, kind: str, item: Item, measurements: dict[str, Any]
) -> tuple[str, str]:
    """The findings and impression a new report of this request starts from."""
    findings, impression, _ = await report_template(session=session, kind=kind)
    context = {
        "measurements": measurements,
        "question": item.request.question,
        "specialty": item.request.specialty,
        "priority": item.request.priority,
        "clinic": item.clinic,
        "study_description": item.study_description,
    }
    try:
        return report_texts.fill(findings, context), report_texts.fill(impression, context)
    except Exception:  # a template that fails on real values must not stop the reading
        log.warning("report template %s failed; starting from empty text", kind, exc_info=True)
        return "", ""
