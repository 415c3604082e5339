"""Consult requests: asking, offering to one on-duty specialist at a time, answers, notes.

A request for a specialty is offered to one on-duty specialist of it at a time, the one
least recently offered any consult (never offered first, then by user id): round robin
over whoever is on duty. The offer lapses after the policy's offer time or on a decline,
and the request goes to the next on-duty specialist who has not had it; when nobody is
left it is `expired`. A request to a named specialist is offered to them only.

Every move of an offer is one conditional UPDATE (the row changes only if it still
stands as the mover saw it), so that two specialists never both accept, and the offer
watch may run in several server processes at once: each lapse is moved on, audited and
announced by exactly one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.accounts.models import Organisation, User
from server.archive import service as archive
from server.archive.models import Study
from server.audit.service import DENIED, FAILURE, Recorder
from server.consults import duty
from server.consults.models import (
    Consult,
    ConsultGuest,
    ConsultNote,
    ConsultOffer,
    ConsultStatus,
    ConsultStudy,
    NoteKind,
)
from server.db import after_commit, utcnow
from server.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from server.events import channels
from server.events.bus import EventBus
from server.identity import Principal, Role
from server.kiosk.models import KioskVisit
from server.patients import service as patients
from server.patients.models import Patient
from server.settings import Settings

log = logging.getLogger(__name__)
REASON_MAX = 2000
NOTE_MAX = 10_000
MAX_STUDIES = 20
LIST_LIMIT = 200
MAX_ID = 2**63 - 1
OPEN = (ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED, ConsultStatus.LIVE)
"""Statuses of a consult that has not come to an end."""
HELD = (ConsultStatus.ACCEPTED, ConsultStatus.LIVE, ConsultStatus.ENDED)
"""Statuses of a consult that a specialist took: it has notes."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How long one specialist has to answer an offer."""

    offer: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The policy configured in settings."""
        return cls(offer=timedelta(seconds=settings.consult_offer_seconds))


@dataclass(frozen=True, slots=True)
class Note:
    """One note on a consult."""

    id: int
    author: str
    text: str
    created_at: datetime
    kind: str = "note"
    """chat, advice, prescription, referral_up, referral_down or note (NoteKind)."""


@dataclass(frozen=True, slots=True)
class View:
    """A consult as its members see it: status, who it is offered to now or who took it."""

    consult: Consult
    clinic: str
    patient_name: str
    requested_by: str
    offered_to: str | None
    accepted_by: str | None
    study_uids: tuple[str, ...]
    notes: tuple[Note, ...]
    org_kind: str = "clinic"
    """The kind of the requesting organisation: a clinic, or a corner (its kiosk asked)."""

    @property
    def specialist(self) -> str | None:
        """The specialist who took the consult, or the one it is offered to now."""
        return self.accepted_by or self.offered_to

    def summary(self) -> dict[str, Any]:
        """Every field of the consult but its notes (the body of the API and of events)."""
        c = self.consult
        return {
            "id": c.id,
            "status": c.status,
            "patient_id": c.patient_id,
            "patient_name": self.patient_name,
            "clinic": self.clinic,
            "requested_by": self.requested_by,
            "specialty": c.specialty,
            "specialist": self.specialist,
            "reason": c.reason,
            "walk_in": c.walk_in,
            "study_uids": list(self.study_uids),
            "scheduled_at": c.scheduled_at,
            "created_at": c.created_at,
            "offered_until": c.offered_until if self.offered_to else None,
            "accepted_at": c.accepted_at,
            "ended_at": c.ended_at,
        }

    def event(self) -> dict[str, Any]:
        """The summary as JSON values, for the events bus."""
        return {k: _iso(v) if isinstance(v, datetime) else v for k, v in self.summary().items()}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# Who sees what -----------------------------------------------------------------------


def visible_to(caller: Principal) -> ColumnElement[bool]:
    """SQL condition on Consult: the consults this caller is a member of.

    The requesting clinic's GPs; the specialist who accepted it, and the one it is
    offered to now; a kiosk, the open consults of the person checked in at it now.
    """
    if caller.role is Role.GP:
        return Consult.org_id == caller.org_id
    if caller.role is Role.KIOSK:
        checked_in = select(KioskVisit.person_id).where(
            KioskVisit.device_id == caller.user_id, KioskVisit.closed_at.is_(None)
        )
        return and_(
            Consult.org_id == caller.org_id,
            Consult.requested_by == caller.user_id,
            Consult.patient_id.in_(checked_in),
            Consult.status.in_([s.value for s in OPEN]),
        )
    if caller.role is Role.SPECIALIST:
        return or_(
            Consult.specialist_id == caller.user_id,
            and_(
                Consult.offered_to == caller.user_id,
                Consult.status == ConsultStatus.REQUESTED.value,
            ),
        )
    return false()


async def _views(
    session: AsyncSession, *where: ColumnElement[bool], notes: bool, limit: int = LIST_LIMIT
) -> list[View]:
    offered = User.__table__.alias("offered")
    accepted = User.__table__.alias("accepted")
    asker = User.__table__.alias("asker")
    rows = (
        await session.execute(
            select(
                Consult,
                Organisation.name,
                Organisation.kind,
                Patient.name,
                asker.c.username,
                offered.c.username,
                accepted.c.username,
            )
            .join(Organisation, Organisation.id == Consult.org_id)
            .join(Patient, Patient.id == Consult.patient_id)
            .join(asker, asker.c.id == Consult.requested_by)
            .outerjoin(offered, offered.c.id == Consult.offered_to)
            .outerjoin(accepted, accepted.c.id == Consult.specialist_id)
            .where(*where)
            .order_by(Consult.created_at.desc(), Consult.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    ).all()
    ids = [row[0].id for row in rows]
    studies: dict[int, list[str]] = {}
    found_notes: dict[int, list[Note]] = {}
    if ids:
        for consult_id, uid in await session.execute(
            select(ConsultStudy.consult_id, ConsultStudy.study_uid)
            .where(ConsultStudy.consult_id.in_(ids))
            .order_by(ConsultStudy.study_uid)
        ):
            studies.setdefault(consult_id, []).append(uid)
        if notes:
            for note, author, guest in await session.execute(
                select(ConsultNote, User.username, ConsultGuest.label)
                .outerjoin(User, User.id == ConsultNote.author_id)
                .outerjoin(ConsultGuest, ConsultGuest.id == ConsultNote.guest_id)
                .where(ConsultNote.consult_id.in_(ids))
                .order_by(ConsultNote.created_at, ConsultNote.id)
            ):
                said_by = author or f"{guest or 'Guest'} (guest)"
                found_notes.setdefault(note.consult_id, []).append(
                    Note(note.id, said_by, note.text, note.created_at, note.kind)
                )
    return [
        View(
            c,
            clinic,
            patient or "",
            asker_name,
            offered_name if c.status == ConsultStatus.REQUESTED else None,
            accepted_name,
            tuple(studies.get(c.id, ())),
            tuple(found_notes.get(c.id, ())),
            str(kind),
        )
        for c, clinic, kind, patient, asker_name, offered_name, accepted_name in rows
    ]


async def _view(session: AsyncSession, consult_id: int) -> View:
    found = await _views(session, Consult.id == consult_id, notes=True, limit=1)
    if not found:
        raise NotFound(f"No consult {consult_id}.")
    return found[0]


async def _member_view(session: AsyncSession, caller: Principal, consult_id: int) -> View:
    """The consult if the caller is a member of it; NotFound otherwise."""
    if not 0 < consult_id <= MAX_ID:
        raise NotFound(f"No consult {consult_id}.")
    found = await _views(session, Consult.id == consult_id, visible_to(caller), notes=True, limit=1)
    if not found:
        raise NotFound(f"No consult {consult_id}.")
    return found[0]


# Announcements -----------------------------------------------------------------------


def _announce(
    session: AsyncSession, bus: EventBus, kind: str, view: View, *user_ids: int | None
) -> None:
    """After the commit: tell the requesting clinic, and these users on their own channels."""
    event = {"type": kind, "consult": view.event()}
    targets = [channels.org(view.consult.org_id)]
    targets += [channels.user(u) for u in dict.fromkeys(user_ids) if u is not None]

    async def publish() -> None:
        for channel in targets:
            try:
                await bus.publish(channel, event)
            except Exception:  # committed already; pages re-sync from GET on their next load
                log.warning("could not announce %s on %s", kind, channel, exc_info=True)

    after_commit(session, publish)


# Asking ------------------------------------------------------------------------------


async def create(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    patient_id: int,
    specialty: str | None,
    specialist: str | None,
    reason: str,
    study_uids: Sequence[str] = (),
    scheduled_at: datetime | None = None,
    walk_in: bool = False,
) -> View:
    """A GP asks for a consult on one of their clinic's patients, or a kiosk for the person
    checked in at it (`walk_in`: "see an expert now"); offered at once."""
    if caller.role not in (Role.GP, Role.KIOSK):
        raise PermissionDenied("Only GPs and kiosks request consults.")
    if caller.role is Role.KIOSK and study_uids:
        raise InvalidInput("A kiosk attaches no studies.")
    if walk_in and specialty is None:
        raise InvalidInput("A walk-in consult asks for a specialty.")
    if (specialty is None) == (specialist is None):
        raise InvalidInput("Ask for either a specialty or a named specialist.")
    if specialty is not None and specialty not in accounts.SPECIALTIES:
        raise InvalidInput(
            f"Unknown specialty {specialty[:64]!r}.",
            details={"allowed": list(accounts.SPECIALTIES)},
        )
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"The reason is longer than {REASON_MAX} characters.")
    whose = (
        Patient.org_id == caller.org_id
        if caller.role is Role.KIOSK
        else patients.visible_to(caller)
    )
    if not 0 < patient_id <= MAX_ID or not await session.scalar(
        select(Patient.id).where(Patient.id == patient_id, whose)
    ):
        raise NotFound(f"No patient {patient_id} in your clinic.")
    named: int | None = None
    if specialist is not None:
        named = await session.scalar(
            select(User.id).where(
                User.username == specialist,
                User.role == Role.SPECIALIST,
                User.is_active.is_(True),
            )
        )
        if named is None:
            raise InvalidInput(f"{specialist[:64]!r} is not an active specialist.")
    uids = list(dict.fromkeys(study_uids))
    if len(uids) > MAX_STUDIES:
        raise InvalidInput(f"Attach at most {MAX_STUDIES} studies.")
    studies: list[Study] = []
    if uids:
        studies = list(
            await session.scalars(
                select(Study).where(Study.study_uid.in_(uids), archive.visible_studies(caller))
            )
        )
        missing = sorted(set(uids) - {s.study_uid for s in studies})
        if missing:
            raise NotFound(f"No study {missing[0][:64]} in your clinic.")
    now = utcnow()
    consult = Consult(
        org_id=caller.org_id,
        patient_id=patient_id,
        requested_by=caller.user_id,
        specialty=specialty,
        named_specialist_id=named,
        reason=reason,
        scheduled_at=scheduled_at,
        walk_in=walk_in,
        status=ConsultStatus.REQUESTED.value,
        created_at=now,
        offered_until=now + policy.offer,
    )
    session.add(consult)
    await session.flush()
    seen: set[str] = set()
    for study in studies:
        if study.study_uid not in seen:
            seen.add(study.study_uid)
            session.add(
                ConsultStudy(consult_id=consult.id, study_id=study.id, study_uid=study.study_uid)
            )
    await session.flush()
    await audit.record(
        session,
        action="consult.request",
        object_type="consult",
        object_id=consult.id,
        details={
            "patient": patient_id,
            "specialty": specialty,
            "specialist": specialist,
            "studies": sorted(seen),
            "walk_in": walk_in,
        },
    )
    await _advance(session, audit, bus, policy, consult.id, now)
    return await _view(session, consult.id)


# Offering ----------------------------------------------------------------------------


async def _candidates(
    session: AsyncSession, consult: Consult, policy: Policy, now: datetime
) -> list[int]:
    """Who may have the request next, in turn: not offered it before, least recently offered.

    A walk-in goes round again once everyone on duty had it: to those who did not answer
    it (declined or lapsed) within the last offer time.
    """
    offers = (
        await session.execute(
            select(ConsultOffer.user_id, ConsultOffer.answered_at).where(
                ConsultOffer.consult_id == consult.id
            )
        )
    ).all()
    had = {user_id for user_id, _ in offers}
    if consult.walk_in:
        pause = now - policy.offer
        had = {u for u, answered in offers if answered is None or answered > pause}
    if consult.named_specialist_id is not None:
        active = await session.scalar(
            select(User.id).where(User.id == consult.named_specialist_id, User.is_active.is_(True))
        )
        return [active] if active is not None and active not in had else []
    assert consult.specialty is not None
    on_duty = [
        u
        for u in await duty.on_duty_for(session=session, specialty=consult.specialty)
        if u not in had
    ]
    if not on_duty:
        return []
    last = dict(
        (
            await session.execute(
                select(ConsultOffer.user_id, func.max(ConsultOffer.offered_at))
                .where(ConsultOffer.user_id.in_(on_duty))
                .group_by(ConsultOffer.user_id)
            )
        ).all()
    )
    return sorted(on_duty, key=lambda u: (u in last, last.get(u) or consult.created_at, u))


async def _advance(
    session: AsyncSession,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    consult_id: int,
    now: datetime,
) -> None:
    """Offer a request that nobody holds to the next specialist, or end it when none is left.

    A request that was never offered (nobody on duty when it was made) waits for someone
    to come on duty until its first offer time has run out.
    """
    consult = await session.scalar(
        select(Consult).where(Consult.id == consult_id).execution_options(populate_existing=True)
    )
    if consult is None or consult.status != ConsultStatus.REQUESTED or consult.offered_to:
        return
    candidates = await _candidates(session, consult, policy, now)
    if candidates:
        chosen = candidates[0]
        won = await session.scalar(
            update(Consult)
            .where(
                Consult.id == consult_id,
                Consult.status == ConsultStatus.REQUESTED.value,
                Consult.offered_to.is_(None),
            )
            .values(offered_to=chosen, offered_until=now + policy.offer)
            .returning(Consult.id)
            .execution_options(synchronize_session=False)
        )
        if won is None:
            return
        again = await session.scalar(
            update(ConsultOffer)
            .where(ConsultOffer.consult_id == consult_id, ConsultOffer.user_id == chosen)
            .values(outcome="offered", offered_at=now, answered_at=None)
            .returning(ConsultOffer.user_id)
            .execution_options(synchronize_session=False)
        )
        if again is None:
            session.add(ConsultOffer(consult_id=consult_id, user_id=chosen, offered_at=now))
        await session.flush()
        view = await _view(session, consult_id)
        await audit.record(
            session,
            action="consult.offer",
            object_type="consult",
            object_id=consult_id,
            org_id=consult.org_id,
            details={"to": view.offered_to, "until": _iso(now + policy.offer)},
        )
        _announce(session, bus, "consult.offered", view, chosen)
        return
    outcomes = list(
        await session.scalars(
            select(ConsultOffer.outcome).where(ConsultOffer.consult_id == consult_id)
        )
    )
    if consult.walk_in:
        return  # the person waits at the kiosk: offered again when someone can have it
    if not outcomes and consult.offered_until is not None and consult.offered_until > now:
        return  # nobody on duty yet: wait for someone until the first offer time is over
    final = (
        ConsultStatus.DECLINED
        if consult.named_specialist_id is not None and "declined" in outcomes
        else ConsultStatus.EXPIRED
    )
    done = await session.scalar(
        update(Consult)
        .where(
            Consult.id == consult_id,
            Consult.status == ConsultStatus.REQUESTED.value,
            Consult.offered_to.is_(None),
        )
        .values(status=final.value, offered_until=None)
        .returning(Consult.id)
        .execution_options(synchronize_session=False)
    )
    if done is None:
        return
    view = await _view(session, consult_id)
    if final is ConsultStatus.EXPIRED:
        await audit.record(
            session,
            action="consult.expire",
            object_type="consult",
            object_id=consult_id,
            org_id=consult.org_id,
            details={"status": final.value, "offered": len(outcomes)},
        )
    _announce(session, bus, f"consult.{final.value}", view, consult.requested_by)


async def _answer(session: AsyncSession, consult_id: int, user_id: int, outcome: str) -> None:
    await session.execute(
        update(ConsultOffer)
        .where(ConsultOffer.consult_id == consult_id, ConsultOffer.user_id == user_id)
        .values(outcome=outcome, answered_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def settle(
    *,
    session: AsyncSession,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    consult_ids: Sequence[int] | None = None,
) -> list[int]:
    """Move lapsed offers on (and offer waiting requests); the consults whose offer lapsed.

    The offer watch calls it for every consult; reads and answers call it for theirs
    first, so that a lapsed offer is never shown or accepted. Safe with several processes.
    """
    now = utcnow()
    where: list[ColumnElement[bool]] = [Consult.status == ConsultStatus.REQUESTED.value]
    if consult_ids is not None:
        if not consult_ids:
            return []
        where.append(Consult.id.in_(consult_ids))
    due = (
        await session.execute(
            select(Consult.id, Consult.offered_to, Consult.org_id).where(
                *where, Consult.offered_to.is_not(None), Consult.offered_until < now
            )
        )
    ).all()
    lapsed = []
    for consult_id, offered_to, org_id in due:
        moved = await session.scalar(
            update(Consult)
            .where(
                Consult.id == consult_id,
                Consult.status == ConsultStatus.REQUESTED.value,
                Consult.offered_to == offered_to,
                Consult.offered_until < now,
            )
            .values(offered_to=None)
            .returning(Consult.id)
            .execution_options(synchronize_session=False)
        )
        if moved is None or offered_to is None:
            continue  # someone else moved it on, or it was answered meanwhile
        lapsed.append(consult_id)
        await _answer(session, consult_id, offered_to, "lapsed")
        username = await session.scalar(select(User.username).where(User.id == offered_to))
        await audit.record(
            session,
            action="consult.expire",
            object_type="consult",
            object_id=consult_id,
            org_id=org_id,
            details={"offer_to": username, "status": ConsultStatus.REQUESTED.value},
        )
        _withdraw(session, bus, consult_id, offered_to, "lapsed")
        await _advance(session, audit, bus, policy, consult_id, now)
    waiting = list(
        await session.scalars(
            select(Consult.id)
            .where(*where, Consult.offered_to.is_(None))
            .order_by(Consult.created_at, Consult.id)
        )
    )
    for consult_id in waiting:
        await _advance(session, audit, bus, policy, consult_id, now)
    return lapsed


def _withdraw(
    session: AsyncSession, bus: EventBus, consult_id: int, user_id: int, why: str
) -> None:
    """After the commit: tell a specialist that an offer to them is gone (their alert stops)."""
    event = {"type": "consult.withdrawn", "consult": {"id": consult_id}, "reason": why}

    async def publish() -> None:
        try:
            await bus.publish(channels.user(user_id), event)
        except Exception:  # committed already; their list re-syncs on its next load
            log.warning("could not withdraw consult %s from %s", consult_id, user_id, exc_info=True)

    after_commit(session, publish)


# Reading -----------------------------------------------------------------------------


async def consults(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, policy: Policy
) -> list[View]:
    """The caller's consults, newest first: a GP's clinic's; a specialist's taken and offered."""
    mine: ColumnElement[bool] | None = None
    if caller.role is Role.SPECIALIST:
        mine = Consult.offered_to == caller.user_id
    elif caller.role is Role.GP:
        mine = Consult.org_id == caller.org_id
    if mine is not None:  # lapsed offers move on before they are listed
        pending = select(Consult.id).where(mine, Consult.status == ConsultStatus.REQUESTED.value)
        await settle(
            session=session,
            audit=audit,
            bus=bus,
            policy=policy,
            consult_ids=list(await session.scalars(pending)),
        )
    found = await _views(session, visible_to(caller), notes=True)
    audit.record_apart(
        session,
        action="consult.read",
        object_type="consult",
        object_id=",".join(str(v.consult.id) for v in found)[:128],
        details={"results": len(found)},
    )
    return found


async def get(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    consult_id: int,
) -> View:
    """One consult the caller is a member of (a lapsed offer moved on first); NotFound else."""
    if 0 < consult_id <= MAX_ID:
        await settle(session=session, audit=audit, bus=bus, policy=policy, consult_ids=[consult_id])
    try:
        found = await _member_view(session, caller, consult_id)
    except NotFound:
        exists = 0 < consult_id <= MAX_ID and await session.get(Consult, consult_id) is not None
        audit.record_apart(
            session,
            action="consult.read",
            outcome=DENIED if exists else FAILURE,
            object_type="consult",
            object_id=consult_id,
        )
        raise
    audit.record_apart(session, action="consult.read", object_type="consult", object_id=consult_id)
    return found


async def member(*, session: AsyncSession, caller: Principal, consult_id: int) -> View:
    """The consult if the caller is a member of it (for the call's own endpoints); NotFound."""
    return await _member_view(session, caller, consult_id)


# Answers -----------------------------------------------------------------------------


def _not_open(view: View) -> Conflict:
    return Conflict(
        f"Consult {view.consult.id} is {view.consult.status}.",
        details={"status": view.consult.status, "specialist": view.specialist},
    )


async def accept(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    consult_id: int,
) -> View:
    """The specialist it is offered to takes the consult; one conditional UPDATE decides."""
    if caller.role is not Role.SPECIALIST:
        raise PermissionDenied("Only specialists accept consults.")
    await settle(session=session, audit=audit, bus=bus, policy=policy, consult_ids=[consult_id])
    now = utcnow()
    won = await session.scalar(
        update(Consult)
        .where(
            Consult.id == consult_id,
            Consult.status == ConsultStatus.REQUESTED.value,
            Consult.offered_to == caller.user_id,
            Consult.offered_until >= now,
        )
        .values(
            status=ConsultStatus.ACCEPTED.value,
            specialist_id=caller.user_id,
            accepted_at=now,
            offered_to=None,
            offered_until=None,
        )
        .returning(Consult.id)
        .execution_options(synchronize_session=False)
    )
    view = await _member_view(session, caller, consult_id)
    if won is None:
        raise _not_open(view)
    await _answer(session, consult_id, caller.user_id, "accepted")
    await audit.record(
        session,
        action="consult.accept",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
    )
    _announce(session, bus, "consult.accepted", view, view.consult.requested_by)
    return view


async def decline(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: Policy,
    consult_id: int,
) -> View:
    """The specialist it is offered to says no; it goes to the next one (or ends)."""
    if caller.role is not Role.SPECIALIST:
        raise PermissionDenied("Only specialists decline consults.")
    await settle(session=session, audit=audit, bus=bus, policy=policy, consult_ids=[consult_id])
    won = await session.scalar(
        update(Consult)
        .where(
            Consult.id == consult_id,
            Consult.status == ConsultStatus.REQUESTED.value,
            Consult.offered_to == caller.user_id,
        )
        .values(offered_to=None)
        .returning(Consult.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        raise _not_open(await _member_view(session, caller, consult_id))
    await _answer(session, consult_id, caller.user_id, "declined")
    view = await _view(session, consult_id)
    await audit.record(
        session,
        action="consult.decline",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
    )
    _announce(session, bus, "consult.declined", view, view.consult.requested_by)
    await _advance(session, audit, bus, policy, consult_id, utcnow())
    return await _view(session, consult_id)


async def end(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, consult_id: int
) -> View:
    """Either doctor ends the consult (a GP also withdraws a request nobody took yet)."""
    current = await _member_view(session, caller, consult_id)
    if caller.role is Role.SPECIALIST and current.consult.specialist_id != caller.user_id:
        raise Conflict(
            f"Consult {consult_id} is offered to you: accept or decline it.",
            details={"status": current.consult.status},
        )
    who: ColumnElement[bool] = (
        Consult.specialist_id == caller.user_id
        if caller.role is Role.SPECIALIST
        else Consult.org_id == caller.org_id
    )
    won = await session.scalar(
        update(Consult)
        .where(Consult.id == consult_id, Consult.status.in_([s.value for s in OPEN]), who)
        .values(
            status=ConsultStatus.ENDED.value,
            ended_at=utcnow(),
            ended_by=caller.user_id,
            offered_to=None,
            offered_until=None,
        )
        .returning(Consult.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        raise _not_open(await _view(session, consult_id))
    withdrawn = current.consult.offered_to if current.offered_to else None
    if withdrawn is not None:
        await _answer(session, consult_id, withdrawn, "withdrawn")
        _withdraw(session, bus, consult_id, withdrawn, "ended")
    view = await _view(session, consult_id)
    await audit.record(
        session,
        action="consult.end",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
        details={"from": current.consult.status},
    )
    _announce(
        session, bus, "consult.ended", view, view.consult.specialist_id, view.consult.requested_by
    )
    return view


async def mark_live(
    *, session: AsyncSession, audit: Recorder, bus: EventBus, consult_id: int
) -> bool:
    """The call has begun (both doctors are in the room): accepted → live, once; audited."""
    won = await session.scalar(
        update(Consult)
        .where(Consult.id == consult_id, Consult.status == ConsultStatus.ACCEPTED.value)
        .values(status=ConsultStatus.LIVE.value, live_at=utcnow())
        .returning(Consult.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        return False
    view = await _view(session, consult_id)
    await audit.record(
        session,
        action="consult.live",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
    )
    _announce(session, bus, "consult.live", view, view.consult.specialist_id)
    return True


# Notes -------------------------------------------------------------------------------


async def add_note(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    consult_id: int,
    text: str,
    kind: NoteKind = NoteKind.NOTE,
) -> View:
    """Either doctor adds a note to a consult that was taken (during or after the call)."""
    if caller.role not in (Role.GP, Role.SPECIALIST):
        raise PermissionDenied("Only the consult's doctors write notes on it.")
    current = await _member_view(session, caller, consult_id)
    if caller.role is Role.SPECIALIST and current.consult.specialist_id != caller.user_id:
        raise PermissionDenied("Only the specialist who took the consult writes notes on it.")
    if current.consult.status not in HELD:
        raise _not_open(current)
    text = text.strip()
    if not text:
        raise InvalidInput("A note needs some text.")
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"A note is at most {NOTE_MAX} characters.")
    if kind is NoteKind.CHAT:
        raise InvalidInput("Chat messages are sent in the call, not as notes.")
    note = ConsultNote(
        consult_id=consult_id,
        author_id=caller.user_id,
        kind=kind.value,
        text=text,
        created_at=utcnow(),
    )
    session.add(note)
    await session.flush()
    await audit.record(
        session,
        action="consult.note",
        object_type="consult",
        object_id=consult_id,
        org_id=current.consult.org_id,
        details={"note": note.id, "kind": kind.value},
    )
    return await _view(session, consult_id)
