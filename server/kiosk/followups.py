"""Follow-ups booked at a kiosk: free slots of the roster, booking, joining, the home link.

Free slots are the roster's shifts of a specialty cut into slots of
`kiosk_follow_up_minutes` (from each shift's start), from the next full hour up to
14 days ahead, minus the follow-ups already booked with that specialist. A slot's id
is opaque to the kiosk (it names the specialty, the specialist and the start).

Booking is one conditional insert (INSERT … ON CONFLICT DO NOTHING RETURNING): the
unique (specialist, start) constraint decides between two kiosks that book one slot at
once: one gets it, the other a 409.

A follow-up is either at a kiosk (the person checks in again at the booked time and
joins the call from there) or from home: the person takes home a link
`/kiosk/follow-ups/{token}` (a random token, no personal data) that opens the call only
from 10 minutes before to 30 minutes after the booked start. Opened then, it asks the
named specialist for the consult in the booking kiosk's name, and once the specialist
has accepted it issues a one-time consult guest link (server/consults/guests.py) and
sends the browser on to it, into the call's lobby. The token is kept in the row (not a
digest) because the kiosk's printed summary shows the link again.

The specialist is reminded live 10 minutes before (`remind`, run by the reminder watch
in several processes at once: one conditional UPDATE marks each reminder sent once).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.accounts.models import Organisation, User, UserSpecialty
from server.audit.service import DENIED, FAILURE, Recorder
from server.consults import guests
from server.consults import service as consults
from server.consults.models import CALLABLE, Consult, ConsultStatus
from server.db import after_commit
from server.errors import Conflict, InvalidInput, NotFound
from server.events import channels
from server.events.bus import EventBus
from server.identity import Actor, Principal, Role
from server.kiosk import visits
from server.kiosk.models import KioskFollowUp, RosterShift

log = logging.getLogger(__name__)
MAX_SLOTS = 40
AHEAD = timedelta(days=14)
EARLY = timedelta(minutes=10)
"""How long before the booked start a follow-up can be joined."""
LATE = timedelta(minutes=30)
"""How long after the booked start a follow-up can still be joined."""
REMIND_BEFORE = timedelta(minutes=10)
MAX_ID = 2**63 - 1
TOKEN_BYTES = 32
TOKEN_MAX = 64
SLOT_MAX = 128
Where = Literal["kiosk", "home"]
GUEST_LABEL = "Patient at home (booked follow-up)"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Slot:
    """A free slot of a rostered specialist."""

    id: str
    starts_at: datetime
    ends_at: datetime
    specialist: str
    """The specialist's display name."""
    specialist_id: int


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A booked follow-up, as the kiosk, the printed summary and the home link show it."""

    id: int
    visit_id: int | None
    person_id: int
    org_id: int
    device_id: int
    """The kiosk that booked it."""
    specialist: str
    """The specialist's display name."""
    specialist_username: str
    specialist_id: int
    specialty: str
    starts_at: datetime
    ends_at: datetime
    where: str
    home_token: str | None
    consult_id: int | None

    @property
    def home_path(self) -> str | None:
        """The take-home link's path (where = home), None for a follow-up at the kiosk."""
        return None if self.home_token is None else f"/kiosk/follow-ups/{self.home_token}"

    def due(self, now: datetime) -> bool:
        """True while it can be joined: from 10 minutes before to 30 minutes after its start."""
        return self.starts_at - EARLY <= now <= self.starts_at + LATE

    def out(self, base: str = "") -> dict[str, Any]:
        """The JSON of the contract: {id, start, end, specialist, specialty, where, home_url}.

        home_url is the take-home link under `base` (the server's public base URL; a path
        when it is empty), null for a follow-up at the kiosk.
        """
        path = self.home_path
        return {
            "id": self.id,
            "start": _iso(self.starts_at),
            "end": _iso(self.ends_at),
            "specialist": self.specialist,
            "specialty": self.specialty,
            "where": self.where,
            "home_url": None if path is None else f"{base.rstrip('/')}{path}",
        }


# Slots -------------------------------------------------------------------------------


def slot_id(specialty: str, specialist_id: int, start: datetime) -> str:
    """The opaque id of a slot."""
    raw = f"{specialty}:{specialist_id}:{int(start.timestamp())}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_slot(value: str) -> tuple[str, int, datetime]:
    bad = InvalidInput("Unknown slot; choose one of the slots offered.", details={"field": "slot"})
    if not 0 < len(value) <= SLOT_MAX:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        specialty, user, epoch = raw.split(":")
        user_id, seconds = int(user), int(epoch)
        start = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        raise bad from None
    if specialty not in accounts.SPECIALTIES or not 0 < user_id <= MAX_ID:
        raise bad
    return specialty, user_id, start


def window(now: datetime) -> tuple[datetime, datetime]:
    """Where slots are offered: from the next full hour up to 14 days ahead."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return start, now + AHEAD


async def free_slots(
    *,
    session: AsyncSession,
    specialty: str,
    now: datetime,
    minutes: int,
    specialist_id: int | None = None,
    limit: int | None = MAX_SLOTS,
) -> list[Slot]:
    """The free slots of a specialty's roster, soonest first (then by specialist)."""
    step = timedelta(minutes=minutes)
    start, end = window(now)
    where: list[ColumnElement[bool]] = [
        RosterShift.specialty == specialty,
        RosterShift.starts_at < end,
        RosterShift.ends_at > start,
        User.is_active.is_(True),
        User.role == Role.SPECIALIST,
        exists().where(
            UserSpecialty.user_id == RosterShift.user_id, UserSpecialty.specialty == specialty
        ),
    ]
    if specialist_id is not None:
        where.append(RosterShift.user_id == specialist_id)
    shifts = (
        await session.execute(
            select(
                RosterShift.user_id,
                RosterShift.starts_at,
                RosterShift.ends_at,
                User.display_name,
                User.username,
            )
            .join(User, User.id == RosterShift.user_id)
            .where(*where)
        )
    ).all()
    if not shifts:
        return []
    people = {u for u, *_ in shifts}
    taken: dict[int, list[tuple[datetime, datetime]]] = {}
    for user_id, a, b in await session.execute(
        select(KioskFollowUp.specialist_id, KioskFollowUp.starts_at, KioskFollowUp.ends_at).where(
            KioskFollowUp.specialist_id.in_(people),
            KioskFollowUp.starts_at < end,
            KioskFollowUp.ends_at > start,
        )
    ):
        taken.setdefault(user_id, []).append((a, b))
    found: dict[tuple[int, datetime], Slot] = {}
    for user_id, shift_start, shift_end, display, username in shifts:
        skip = -((shift_start - start) // step) if shift_start < start else 0
        moment = shift_start + step * skip
        last = min(shift_end, end)
        booked = taken.get(user_id, [])
        while moment + step <= last:
            finish = moment + step
            if (user_id, moment) not in found and not any(
                a < finish and b > moment for a, b in booked
            ):
                found[(user_id, moment)] = Slot(
                    slot_id(specialty, user_id, moment),
                    moment,
                    finish,
                    display or username,
                    user_id,
                )
            moment = finish
    ordered = sorted(found.values(), key=lambda s: (s.starts_at, s.specialist, s.specialist_id))
    return ordered if limit is None else ordered[:limit]


# Visits ------------------------------------------------------------------------------


async def _follow_ups(session: AsyncSession, *where: ColumnElement[bool]) -> list[FollowUp]:
    rows = await session.execute(
        select(KioskFollowUp, User.display_name, User.username)
        .join(User, User.id == KioskFollowUp.specialist_id)
        .where(*where)
        .order_by(KioskFollowUp.starts_at, KioskFollowUp.id)
        .limit(200)
        .execution_options(populate_existing=True)
    )
    return [
        FollowUp(
            id=row.id,
            visit_id=row.visit_id,
            person_id=row.person_id,
            org_id=row.org_id,
            device_id=row.device_id,
            specialist=display or username,
            specialist_username=username,
            specialist_id=row.specialist_id,
            specialty=row.specialty,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            where=row.where,
            home_token=row.home_token,
            consult_id=row.consult_id,
        )
        for row, display, username in rows
    ]


async def slots(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    visit_id: int,
    specialty: str,
    now: datetime,
    minutes: int,
) -> list[Slot]:
    """The free follow-up slots of a specialty, for the person checked in at this kiosk."""
    await visits.open_visit(
        session=session,
        caller=caller,
        audit=audit,
        visit_id=visit_id,
        action="kiosk.follow_up.slots",
    )
    if specialty not in accounts.SPECIALTIES:
        raise InvalidInput(
            f"Unknown specialty {specialty[:64]!r}.",
            details={"field": "specialty", "allowed": list(accounts.SPECIALTIES)},
        )
    return await free_slots(session=session, specialty=specialty, now=now, minutes=minutes)


TAKEN = "Sorry, that time has just been taken. Please choose another time."


async def book(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    visit_id: int,
    slot: str,
    where: Where,
    now: datetime,
    minutes: int,
) -> FollowUp:
    """Book a free slot for the person checked in at this kiosk; 409 if it was taken."""
    visit = await visits.open_visit(
        session=session,
        caller=caller,
        audit=audit,
        visit_id=visit_id,
        action="kiosk.follow_up.book",
    )
    if where not in ("kiosk", "home"):
        raise InvalidInput("Choose kiosk or home.", details={"field": "where"})
    specialty, specialist_id, start = _parse_slot(slot)
    if await booked(session=session, visit_id=visit_id) is not None:
        raise Conflict("A follow-up is booked in this visit already.")
    free = await free_slots(
        session=session,
        specialty=specialty,
        now=now,
        minutes=minutes,
        specialist_id=specialist_id,
        limit=None,
    )
    chosen = next((s for s in free if s.starts_at == start), None)

    def refused(reason: str) -> Conflict:
        audit.record_apart(
            session,
            action="kiosk.follow_up.book",
            outcome=FAILURE,
            object_type="kiosk_visit",
            object_id=visit_id,
            details={"reason": reason, "specialty": specialty, "start": _iso(start)},
        )
        return Conflict(TAKEN, details={"slot": slot})

    if chosen is None:
        raise refused("slot not free")
    values = {
        "person_id": visit.person_id,
        "org_id": visit.org_id,
        "visit_id": visit.id,
        "device_id": caller.user_id,
        "specialist_id": specialist_id,
        "specialty": specialty,
        "starts_at": chosen.starts_at,
        "ends_at": chosen.ends_at,
        "where": where,
        "home_token": secrets.token_urlsafe(TOKEN_BYTES) if where == "home" else None,
        "created_at": now,
    }
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new_id = await session.scalar(
        insert(KioskFollowUp)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(KioskFollowUp.id)
        .execution_options(synchronize_session=False)
    )
    if new_id is None:  # the unique (specialist, start): another kiosk booked it just now
        raise refused("slot taken meanwhile")
    await audit.record(
        session,
        action="kiosk.follow_up.book",
        object_type="kiosk_follow_up",
        object_id=new_id,
        details={
            "visit": visit.id,
            "specialist_id": specialist_id,
            "specialty": specialty,
            "start": _iso(chosen.starts_at),
            "where": where,
        },
    )
    found = await _follow_ups(session, KioskFollowUp.id == new_id)
    return found[0]


async def booked(*, session: AsyncSession, visit_id: int) -> FollowUp | None:
    """The follow-up booked in this visit, if any."""
    if not 0 < visit_id <= MAX_ID:
        return None
    found = await _follow_ups(session, KioskFollowUp.visit_id == visit_id)
    return found[0] if found else None


async def due_follow_up(*, session: AsyncSession, person_id: int, now: datetime) -> FollowUp | None:
    """A kiosk follow-up of this person whose time is now (-10/+30 minutes), if any."""
    if not 0 < person_id <= MAX_ID:
        return None
    found = await _follow_ups(
        session,
        KioskFollowUp.person_id == person_id,
        KioskFollowUp.where == "kiosk",
        KioskFollowUp.starts_at >= now - LATE,
        KioskFollowUp.starts_at <= now + EARLY,
    )
    return found[0] if found else None


# Joining -----------------------------------------------------------------------------


async def _lock(session: AsyncSession, follow_up_id: int) -> None:
    """Take the follow-up's row for this transaction (PostgreSQL: its row lock; SQLite: the
    write lock), so that two joins of one follow-up make one consult."""
    await session.execute(
        update(KioskFollowUp)
        .where(KioskFollowUp.id == follow_up_id)
        .values(consult_id=KioskFollowUp.consult_id)
        .execution_options(synchronize_session=False)
    )


async def _open_consult(session: AsyncSession, follow_up: FollowUp) -> Consult | None:
    """The follow-up's consult if it is still open (requested, accepted or live)."""
    if follow_up.consult_id is None:
        return None
    consult = await session.scalar(
        select(Consult)
        .where(Consult.id == follow_up.consult_id)
        .execution_options(populate_existing=True)
    )
    open_ = [s.value for s in consults.OPEN]
    return consult if consult is not None and consult.status in open_ else None


async def _ask(
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: consults.Policy,
    follow_up: FollowUp,
    reason: str,
) -> int:
    view = await consults.create(
        session=session,
        caller=caller,
        audit=audit,
        bus=bus,
        policy=policy,
        patient_id=follow_up.person_id,
        specialty=None,
        specialist=follow_up.specialist_username,
        reason=reason,
        scheduled_at=follow_up.starts_at,
    )
    await session.execute(
        update(KioskFollowUp)
        .where(KioskFollowUp.id == follow_up.id)
        .values(consult_id=view.consult.id)
        .execution_options(synchronize_session=False)
    )
    return view.consult.id


async def join(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: consults.Policy,
    visit_id: int,
    follow_up_id: int,
    now: datetime,
) -> int:
    """The booked person, checked in at this kiosk at the booked time, joins their follow-up:
    its consult (asked of the named specialist now, or the one asked already)."""
    visit = await visits.open_visit(
        session=session,
        caller=caller,
        audit=audit,
        visit_id=visit_id,
        action="kiosk.follow_up.join",
    )
    found = (
        await _follow_ups(
            session,
            KioskFollowUp.id == follow_up_id,
            KioskFollowUp.person_id == visit.person_id,
            KioskFollowUp.org_id == visit.org_id,
        )
        if 0 < follow_up_id <= MAX_ID
        else []
    )
    if not found:
        audit.record_apart(
            session,
            action="kiosk.follow_up.join",
            outcome=DENIED,
            object_type="kiosk_follow_up",
            object_id=follow_up_id,
            details={"visit": visit_id},
        )
        raise NotFound(f"No follow-up {follow_up_id} of the person checked in.")
    if not found[0].due(now):
        raise Conflict(
            "It is not the time of this follow-up: join from 10 minutes before it starts "
            "until 30 minutes after.",
            details={"start": _iso(found[0].starts_at)},
        )
    await _lock(session, follow_up_id)
    follow_up = (await _follow_ups(session, KioskFollowUp.id == follow_up_id))[0]
    current = await _open_consult(session, follow_up)
    if current is not None and current.requested_by == caller.user_id:
        visit.consult_id = current.id  # the kiosk follows it like a walk-in's (GET …/queue)
        return current.id
    consult_id = await _ask(
        session, caller, audit, bus, policy, follow_up, "Booked follow-up, at the kiosk."
    )
    visit.consult_id = consult_id
    await audit.record(
        session,
        action="kiosk.follow_up.join",
        object_type="kiosk_follow_up",
        object_id=follow_up_id,
        details={"visit": visit_id, "consult": consult_id},
    )
    return consult_id


# The home link -----------------------------------------------------------------------


HomeState = Literal["early", "late", "waiting", "call", "ended"]


@dataclass(frozen=True, slots=True)
class Home:
    """What opening a home link came to.

    early/late: outside its time; waiting: the specialist has been asked and not accepted
    yet; call: accepted — go to `guest_token`'s guest link (a new one), or straight to
    the call when the browser is a valid guest of it already (`guest_token` None);
    ended: the follow-up's call is over.
    """

    follow_up: FollowUp
    state: HomeState
    consult_id: int | None = None
    guest_token: str | None = None


def home_actor(follow_up: FollowUp, client_addr: str = "") -> Actor:
    """The audit actor of a home link: no user, named by the follow-up."""
    return Actor(
        user_id=None,
        username=f"follow-up:{follow_up.id}",
        org_id=follow_up.org_id,
        client_addr=client_addr,
    )


async def by_token(*, session: AsyncSession, token: str) -> FollowUp | None:
    """The home follow-up of a take-home token, if any."""
    if not 0 < len(token) <= TOKEN_MAX:
        return None
    found = await _follow_ups(session, KioskFollowUp.home_token == token)
    return found[0] if found else None


async def _principal(session: AsyncSession, user_id: int) -> Principal | None:
    user = await session.scalar(select(User).where(User.id == user_id, User.is_active.is_(True)))
    return None if user is None else Principal.of(user, via="follow-up")


async def open_home(
    *,
    session: AsyncSession,
    audit: Recorder,
    bus: EventBus,
    policy: consults.Policy,
    guest_policy: guests.Policy,
    token: str,
    now: datetime,
    guest_credential: str | None = None,
) -> Home:
    """Open a take-home link: outside its time it only says when; at the time it asks the
    named specialist for the consult (in the booking kiosk's name) and, once they have
    accepted, issues a guest link into the call. Audited as the follow-up's own actor."""
    found = await by_token(session=session, token=token)
    if found is None:
        audit.record_apart(
            session,
            action="kiosk.follow_up.home",
            outcome=FAILURE,
            object_type="kiosk_follow_up",
            details={"reason": "unknown link"},
        )
        raise NotFound("This link is not valid.")
    acting = audit.acting_as(home_actor(found, audit.actor.client_addr))
    if now < found.starts_at - EARLY or now > found.starts_at + LATE:
        state: HomeState = "early" if now < found.starts_at else "late"
        acting.record_apart(
            session,
            action="kiosk.follow_up.home",
            outcome=DENIED,
            object_type="kiosk_follow_up",
            object_id=found.id,
            details={"state": state},
        )
        return Home(found, state)
    await _lock(session, found.id)
    follow_up = (await _follow_ups(session, KioskFollowUp.id == found.id))[0]
    consult: Consult | None = None
    if follow_up.consult_id is not None:
        consult = await session.scalar(
            select(Consult)
            .where(Consult.id == follow_up.consult_id)
            .execution_options(populate_existing=True)
        )
    if consult is not None and consult.status == ConsultStatus.ENDED.value:
        return Home(follow_up, "ended", consult.id)
    if consult is None or consult.status not in [s.value for s in consults.OPEN]:
        device = await _principal(session, follow_up.device_id)
        if device is None:
            raise Conflict("This follow-up can no longer be joined from home.")
        consult_id = await _ask(
            session, device, acting, bus, policy, follow_up, "Booked follow-up, from home."
        )
        await acting.record(
            session,
            action="kiosk.follow_up.home",
            object_type="kiosk_follow_up",
            object_id=follow_up.id,
            details={"consult": consult_id, "step": "asked"},
        )
        return Home(follow_up, "waiting", consult_id)
    if consult.status not in CALLABLE:
        return Home(follow_up, "waiting", consult.id)
    if guest_credential is not None:
        member = await guests.guest_member(
            session=session, cookie_value=guest_credential, consult_id=consult.id
        )
        if member is not None and member.valid:
            return Home(follow_up, "call", consult.id)
    specialist = await _principal(session, consult.specialist_id or 0)
    if specialist is None:
        raise Conflict("The specialist of this follow-up can no longer take it.")
    until = follow_up.ends_at + LATE
    lasting = int(
        min(guest_policy.longest, max(until - now, timedelta(minutes=1))) // timedelta(minutes=1)
    )
    invitation = await guests.invite(
        session=session,
        caller=specialist,
        audit=acting,
        policy=guest_policy,
        consult_id=consult.id,
        label=GUEST_LABEL,
        expires_in_minutes=max(1, lasting),
    )
    await acting.record(
        session,
        action="kiosk.follow_up.home",
        object_type="kiosk_follow_up",
        object_id=follow_up.id,
        details={"consult": consult.id, "step": "guest link", "guest": invitation.link.id},
    )
    return Home(follow_up, "call", consult.id, invitation.token)


# Calendar file -----------------------------------------------------------------------


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1)."""
    data = line.encode()
    parts: list[str] = []
    while len(data) > 75:
        cut = 75 if not parts else 74
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never inside a UTF-8 sequence
        parts.append(data[:cut].decode())
        data = data[cut:]
    parts.append(data.decode())
    return "\r\n ".join(parts)


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(follow_up: FollowUp, *, url: str, host: str, now: datetime) -> str:
    """An iCalendar file (RFC 5545) of the follow-up, with a display alarm 15 minutes before."""
    title = f"Video follow-up with {follow_up.specialist}"
    lines: Sequence[str] = (
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Doorstep//Kiosk follow-up//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:kiosk-follow-up-{follow_up.id}@{_ics_text(host)}",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(follow_up.starts_at)}",
        f"DTEND:{_ics_time(follow_up.ends_at)}",
        f"SUMMARY:{_ics_text(title)}",
        f"DESCRIPTION:{_ics_text(f'Open this link at the time of your follow-up: {url}')}",
        f"URL:{url}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{_ics_text(title + ' in 15 minutes')}",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    return "".join(_fold(line) + "\r\n" for line in lines)


# Reminders and today's list ----------------------------------------------------------


async def remind(*, session: AsyncSession, bus: EventBus, now: datetime) -> list[int]:
    """Mark the follow-ups starting within 10 minutes as reminded, and after the commit tell
    each one's specialist (`follow_up.reminder` on their user channel). Each follow-up is
    marked by one conditional UPDATE: with several watchers, exactly one reminds."""
    due = (
        await session.execute(
            select(KioskFollowUp.id, KioskFollowUp.specialist_id).where(
                KioskFollowUp.reminded_at.is_(None),
                KioskFollowUp.starts_at <= now + REMIND_BEFORE,
                KioskFollowUp.starts_at > now - LATE,
            )
        )
    ).all()
    sent: list[int] = []
    for follow_up_id, specialist_id in due:
        won = await session.scalar(
            update(KioskFollowUp)
            .where(KioskFollowUp.id == follow_up_id, KioskFollowUp.reminded_at.is_(None))
            .values(reminded_at=now)
            .returning(KioskFollowUp.id)
            .execution_options(synchronize_session=False)
        )
        if won is None:
            continue
        sent.append(follow_up_id)
        follow_up = (await _follow_ups(session, KioskFollowUp.id == follow_up_id))[0]
        corner = await session.scalar(
            select(Organisation.name).where(Organisation.id == follow_up.org_id)
        )
        event = {
            "type": "follow_up.reminder",
            "follow_up": {**follow_up.out(), "home_url": None, "corner": corner},
        }

        async def publish(channel: str = channels.user(specialist_id), body: Any = event) -> None:
            try:
                await bus.publish(channel, body)
            except Exception:  # committed: the roster page lists it all the same
                log.warning("could not send a follow-up reminder on %s", channel, exc_info=True)

        after_commit(session, publish)
    return sent


@dataclass(frozen=True, slots=True)
class Booking:
    """A follow-up on the roster page: no patient data, the corner and the state only."""

    follow_up: FollowUp
    corner: str
    status: str
    """booked (nobody joined yet), or the status of its consult."""


async def between(*, session: AsyncSession, start: datetime, end: datetime) -> list[Booking]:
    """The follow-ups starting in [start, end), soonest first (the roster's "today")."""
    found = await _follow_ups(
        session, KioskFollowUp.starts_at >= start, KioskFollowUp.starts_at < end
    )
    if not found:
        return []
    corners = dict(
        (
            await session.execute(
                select(Organisation.id, Organisation.name).where(
                    Organisation.id.in_({f.org_id for f in found})
                )
            )
        ).all()
    )
    ids = [f.consult_id for f in found if f.consult_id is not None]
    statuses = (
        dict(
            (
                await session.execute(select(Consult.id, Consult.status).where(Consult.id.in_(ids)))
            ).all()
        )
        if ids
        else {}
    )
    return [
        Booking(f, corners.get(f.org_id, ""), statuses.get(f.consult_id or 0, "booked"))
        for f in found
    ]
