"""The roster: which specialist is on duty for which specialty, when; coverage; who waits now.

A shift is one stretch of time (UTC) of one specialist for one of their specialties.
"Repeat weekly for N weeks" makes N rows, a week apart in the deployment's wall-clock
time (a 09:00 shift stays at 09:00 across a daylight-saving change). Shifts are the
source of the follow-up slots a kiosk offers (server/kiosk/followups.py).

Administrators add and remove shifts (audited: roster.add, roster.remove) and read the
coverage; specialists read their own shifts. Administrators see no patient data: the
people waiting now are shown by corner and time waited only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.accounts.models import Organisation, User, UserSpecialty
from server.audit.service import Recorder
from server.consults.models import Consult, ConsultStatus, Duty
from server.db import utcnow
from server.errors import InvalidInput, NotFound, PermissionDenied
from server.identity import Principal, Role
from server.kiosk.models import RosterShift

MAX_SHIFT = timedelta(hours=24)
MAX_WEEKS = 52
MAX_SPAN = timedelta(days=62)
"""The longest stretch of time one roster query covers."""
LIST_LIMIT = 2000
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Shift:
    """One roster shift as the roster shows it."""

    id: int
    username: str
    name: str
    """The specialist's display name (their username when they have none)."""
    specialty: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Hour:
    """One hour of the coverage grid: how much of it somebody is rostered for."""

    starts_at: datetime
    """The hour's start (UTC)."""
    local: datetime
    """The same moment in the deployment's time zone."""
    minutes: int
    """Minutes of the hour that at least one specialist is rostered for (0 to 60)."""
    people: int
    """How many different specialists are rostered for some of the hour."""

    @property
    def state(self) -> str:
        """gap (nobody), partial or covered."""
        if self.minutes <= 0:
            return "gap"
        return "covered" if self.minutes >= 60 else "partial"


@dataclass(frozen=True, slots=True)
class Day:
    """One local day of a specialty's coverage grid."""

    day: date
    hours: tuple[Hour, ...]

    @property
    def gaps(self) -> int:
        """Hours of the day with nobody rostered."""
        return sum(1 for h in self.hours if h.state == "gap")


@dataclass(frozen=True, slots=True)
class Coverage:
    """A specialty's week of coverage, day by day in the deployment's time zone."""

    specialty: str
    days: tuple[Day, ...]

    @property
    def gaps(self) -> int:
        """Hours of the week with nobody rostered."""
        return sum(d.gaps for d in self.days)


@dataclass(frozen=True, slots=True)
class DutyNow:
    """One specialty now: who is rostered, and who has actually switched on duty."""

    specialty: str
    rostered: tuple[str, ...]
    on_duty: tuple[str, ...]

    @property
    def unstaffed(self) -> bool:
        """Rostered specialists but nobody on duty."""
        return bool(self.rostered) and not self.on_duty


@dataclass(frozen=True, slots=True)
class Waiting:
    """A person waiting at a corner for "see an expert now" (no patient data)."""

    consult_id: int
    specialty: str
    corner: str
    since: datetime
    waited_seconds: int


def _shift_of(row: RosterShift, username: str, display_name: str) -> Shift:
    return Shift(
        id=row.id,
        username=username,
        name=display_name or username,
        specialty=row.specialty,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"The {what} needs a time zone (UTC: a trailing Z).")
    return moment.astimezone(UTC)


async def _shifts(session: AsyncSession, *where: ColumnElement[bool]) -> list[Shift]:
    rows = await session.execute(
        select(RosterShift, User.username, User.display_name)
        .join(User, User.id == RosterShift.user_id)
        .where(*where)
        .order_by(RosterShift.starts_at, User.username, RosterShift.id)
        .limit(LIST_LIMIT)
    )
    return [_shift_of(row, username, name) for row, username, name in rows]


# Changes -----------------------------------------------------------------------------


async def add(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    specialist: str,
    specialty: str,
    starts_at: datetime,
    ends_at: datetime,
    weeks: int = 1,
    zone: ZoneInfo,
) -> list[Shift]:
    """An administrator rosters a specialist for one of their specialties: one shift, or the
    same wall-clock time in `zone` every week for `weeks` weeks. Each row is audited."""
    if caller.role is not Role.ADMIN:
        raise PermissionDenied("Only administrators change the roster.")
    start, end = _aware(starts_at, "start"), _aware(ends_at, "end")
    if end <= start:
        raise InvalidInput("A shift ends after it starts.", details={"field": "end"})
    if end - start > MAX_SHIFT:
        raise InvalidInput("A shift lasts at most 24 hours.", details={"field": "end"})
    if not 1 <= weeks <= MAX_WEEKS:
        raise InvalidInput(
            f"Repeat a shift for 1 to {MAX_WEEKS} weeks.", details={"field": "weeks"}
        )
    if specialty not in accounts.SPECIALTIES:
        raise InvalidInput(
            f"Unknown specialty {specialty[:64]!r}.",
            details={"field": "specialty", "allowed": list(accounts.SPECIALTIES)},
        )
    user = await session.scalar(
        select(User).where(
            User.username == specialist,
            User.role == Role.SPECIALIST,
            User.is_active.is_(True),
        )
    )
    if user is None:
        raise InvalidInput(
            f"{specialist[:64]!r} is not an active specialist.", details={"field": "specialist"}
        )
    if specialty not in {s.specialty for s in user.specialties}:
        raise InvalidInput(
            f"{specialist} is not a {specialty} specialist.", details={"field": "specialty"}
        )
    local_start = start.astimezone(zone).replace(tzinfo=None)
    length = end - start
    made: list[RosterShift] = []
    for week in range(weeks):
        wall = local_start + timedelta(weeks=week)
        first = wall.replace(tzinfo=zone).astimezone(UTC)
        row = RosterShift(
            user_id=user.id,
            specialty=specialty,
            starts_at=first,
            ends_at=first + length,
            created_by=caller.user_id,
            created_at=utcnow(),
        )
        session.add(row)
        made.append(row)
    await session.flush()
    for row in made:
        await audit.record(
            session,
            action="roster.add",
            object_type="roster_shift",
            object_id=row.id,
            details={
                "specialist": user.username,
                "specialty": specialty,
                "start": row.starts_at.isoformat(),
                "end": row.ends_at.isoformat(),
            },
        )
    return [_shift_of(row, user.username, user.display_name) for row in made]


async def remove(
    *, session: AsyncSession, caller: Principal, audit: Recorder, shift_id: int
) -> Shift:
    """An administrator removes a shift (booked follow-ups in it stay booked); audited."""
    if caller.role is not Role.ADMIN:
        raise PermissionDenied("Only administrators change the roster.")
    found = await _shifts(session, RosterShift.id == shift_id) if 0 < shift_id <= MAX_ID else []
    if not found:
        raise NotFound(f"No roster shift {shift_id}.")
    gone = await session.scalar(
        delete(RosterShift)
        .where(RosterShift.id == shift_id)
        .returning(RosterShift.id)
        .execution_options(synchronize_session=False)
    )
    if gone is None:
        raise NotFound(f"No roster shift {shift_id}.")
    shift = found[0]
    await audit.record(
        session,
        action="roster.remove",
        object_type="roster_shift",
        object_id=shift_id,
        details={
            "specialist": shift.username,
            "specialty": shift.specialty,
            "start": shift.starts_at.isoformat(),
            "end": shift.ends_at.isoformat(),
        },
    )
    return shift


# Reading -----------------------------------------------------------------------------


async def shifts(
    *,
    session: AsyncSession,
    caller: Principal,
    start: datetime,
    end: datetime,
    specialty: str | None = None,
) -> list[Shift]:
    """The shifts overlapping [start, end), soonest first: every one for an administrator,
    their own for a specialist."""
    if caller.role not in (Role.ADMIN, Role.SPECIALIST):
        raise PermissionDenied("Only administrators and specialists read the roster.")
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise InvalidInput("'to' is after 'from'.", details={"field": "to"})
    if end - start > MAX_SPAN:
        raise InvalidInput(f"Ask for at most {MAX_SPAN.days} days.", details={"field": "to"})
    where: list[ColumnElement[bool]] = [RosterShift.starts_at < end, RosterShift.ends_at > start]
    if specialty is not None:
        where.append(RosterShift.specialty == specialty)
    if caller.role is Role.SPECIALIST:
        where.append(RosterShift.user_id == caller.user_id)
    return await _shifts(session, *where)


def week_of(day: date) -> date:
    """The Monday of the week of a day."""
    return day - timedelta(days=day.weekday())


def _covered_minutes(hour: datetime, spans: list[tuple[datetime, datetime]]) -> int:
    """Minutes of [hour, hour + 1 h) inside the union of spans."""
    end = hour + timedelta(hours=1)
    clipped = sorted((max(a, hour), min(b, end)) for a, b in spans if a < end and b > hour)
    total = timedelta()
    reach = hour
    for a, b in clipped:
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return int(total.total_seconds() // 60)


async def coverage(
    *, session: AsyncSession, week: date, zone: ZoneInfo, specialties: tuple[str, ...] = ()
) -> list[Coverage]:
    """Each specialty's coverage, hour by hour, for the local week starting on `week`."""
    monday = week_of(week)
    start = datetime.combine(monday, datetime.min.time()).replace(tzinfo=zone).astimezone(UTC)
    end = (
        datetime.combine(monday + timedelta(days=7), datetime.min.time())
        .replace(tzinfo=zone)
        .astimezone(UTC)
    )
    chosen = specialties or accounts.SPECIALTIES
    rows = (
        await session.execute(
            select(
                RosterShift.specialty,
                RosterShift.user_id,
                RosterShift.starts_at,
                RosterShift.ends_at,
            ).where(
                RosterShift.starts_at < end,
                RosterShift.ends_at > start,
                RosterShift.specialty.in_(chosen),
            )
        )
    ).all()
    result = []
    for specialty in chosen:
        mine = [(u, a, b) for s, u, a, b in rows if s == specialty]
        spans = [(a, b) for _, a, b in mine]
        days: dict[date, list[Hour]] = {}
        hour = start
        while hour < end:
            people = len({u for u, a, b in mine if a < hour + timedelta(hours=1) and b > hour})
            local = hour.astimezone(zone)
            days.setdefault(local.date(), []).append(
                Hour(hour, local, _covered_minutes(hour, spans), people)
            )
            hour += timedelta(hours=1)
        result.append(
            Coverage(specialty, tuple(Day(d, tuple(hours)) for d, hours in sorted(days.items())))
        )
    return result


async def duty_now(*, session: AsyncSession, now: datetime) -> list[DutyNow]:
    """Per specialty: who is rostered at this moment, and who is on duty (the duty toggle)."""
    rostered = (
        await session.execute(
            select(RosterShift.specialty, User.username)
            .join(User, User.id == RosterShift.user_id)
            .where(RosterShift.starts_at <= now, RosterShift.ends_at > now)
            .order_by(User.username)
        )
    ).all()
    on_duty = (
        await session.execute(
            select(UserSpecialty.specialty, User.username)
            .join(User, User.id == UserSpecialty.user_id)
            .join(Duty, Duty.user_id == User.id)
            .where(
                Duty.on_duty.is_(True),
                User.is_active.is_(True),
                User.role == Role.SPECIALIST,
            )
            .order_by(User.username)
        )
    ).all()
    return [
        DutyNow(
            specialty,
            tuple(dict.fromkeys(u for s, u in rostered if s == specialty)),
            tuple(dict.fromkeys(u for s, u in on_duty if s == specialty)),
        )
        for specialty in accounts.SPECIALTIES
    ]


async def waiting_now(*, session: AsyncSession, now: datetime) -> list[Waiting]:
    """The people waiting now for "see an expert now" (open walk-in requests), longest first:
    their specialty, their corner and how long they have waited — nothing about them."""
    rows = (
        await session.execute(
            select(Consult.id, Consult.specialty, Organisation.name, Consult.created_at)
            .join(Organisation, Organisation.id == Consult.org_id)
            .where(
                and_(
                    Consult.walk_in.is_(True),
                    Consult.status == ConsultStatus.REQUESTED.value,
                )
            )
            .order_by(Consult.created_at, Consult.id)
            .limit(LIST_LIMIT)
        )
    ).all()
    return [
        Waiting(
            consult_id=consult_id,
            specialty=specialty or "",
            corner=corner,
            since=since,
            waited_seconds=max(0, int((now - since).total_seconds())),
        )
        for consult_id, specialty, corner, since in rows
    ]


async def specialists(*, session: AsyncSession) -> list[tuple[str, str, tuple[str, ...]]]:
    """(username, display name, specialties) of the active specialists, for the roster form."""
    users = await session.scalars(
        select(User)
        .where(User.role == Role.SPECIALIST, User.is_active.is_(True))
        .order_by(User.username)
    )
    return [
        (u.username, u.display_name or u.username, tuple(s.specialty for s in u.specialties))
        for u in users
    ]
