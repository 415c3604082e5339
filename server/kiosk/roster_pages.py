"""The administrators' roster page `/admin/roster`: add and remove shifts, a week's coverage
per specialty (hours with nobody highlighted), who is on duty now against who is rostered,
the people waiting now and today's follow-ups.

Administrators see no patient data here: a waiting person is a corner and a time waited,
a follow-up a time, a specialist and a corner. Times are shown in the deployment's time
zone (DOORSTEP_TIME_ZONE).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts import service as accounts
from server.context import db, principal, recorder
from server.db import utcnow
from server.errors import DomainError, InvalidInput
from server.forms import Form, read_form
from server.identity import Role
from server.kiosk import followups, roster
from server.templates import render

WEEKS = range(1, roster.MAX_WEEKS + 1)


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[keys.SETTINGS].time_zone)


def _week(request: web.Request, today: date) -> date:
    value = request.query.get("week", "")
    try:
        return roster.week_of(date.fromisoformat(value)) if value else roster.week_of(today)
    except ValueError:
        return roster.week_of(today)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
) -> web.Response:
    zone = _zone(request)
    now = utcnow()
    today = now.astimezone(zone).date()
    week = _week(request, today)
    start = datetime.combine(week, time()).replace(tzinfo=zone)
    day_start = datetime.combine(today, time()).replace(tzinfo=zone)
    async with db(request) as session:
        covered = await roster.coverage(session=session, week=week, zone=zone)
        shifts = await roster.shifts(
            session=session,
            caller=principal(request),
            start=start.astimezone(UTC),
            end=(start + timedelta(days=7)).astimezone(UTC),
        )
        duty = await roster.duty_now(session=session, now=now)
        waiting = await roster.waiting_now(session=session, now=now)
        today_follow_ups = await followups.between(
            session=session,
            start=day_start.astimezone(UTC),
            end=(day_start + timedelta(days=1)).astimezone(UTC),
        )
        people = await roster.specialists(session=session)
    return render(
        request,
        "kiosk/roster.html",
        status=status,
        zone=str(zone),
        now=now.astimezone(zone),
        week=week,
        previous_week=(week - timedelta(days=7)).isoformat(),
        next_week=(week + timedelta(days=7)).isoformat(),
        coverage=covered,
        shifts=[(s, _local(s.starts_at, zone), _local(s.ends_at, zone)) for s in shifts],
        duty=duty,
        waiting=[(w, _local(w.since, zone)) for w in waiting],
        follow_ups=[(b, _local(b.follow_up.starts_at, zone)) for b in today_follow_ups],
        specialists=people,
        specialties=accounts.SPECIALTIES,
        weeks=WEEKS,
        values=values or {"date": today.isoformat(), "weeks": "1"},
        error=error,
        done=request.query.get("done", "")
        if request.query.get("done") in ("added", "removed")
        else "",
    )


@allow(Role.ADMIN, page=True)
async def roster_page(request: web.Request) -> web.StreamResponse:
    """GET /admin/roster?week=YYYY-MM-DD."""
    return await _page(request)


def _times(form: Form, zone: ZoneInfo) -> tuple[datetime, datetime, int]:
    """The shift of the form: a local date, start and end time (an end at or before the start
    is on the next day), and how many weeks."""
    try:
        day = date.fromisoformat(form.text("date", limit=10))
    except ValueError:
        raise InvalidInput("Give the shift's date.", details={"field": "date"}) from None
    try:
        begins = time.fromisoformat(form.text("start", limit=8))
        ends = time.fromisoformat(form.text("end", limit=8))
    except ValueError:
        raise InvalidInput(
            "Give the shift's start and end times.", details={"field": "start"}
        ) from None
    weeks_text = form.text("weeks", limit=3) or "1"
    if not weeks_text.isdigit():
        raise InvalidInput("Give a number of weeks.", details={"field": "weeks"})
    start = datetime.combine(day, begins).replace(tzinfo=zone)
    end_day = day if ends > begins else day + timedelta(days=1)
    end = datetime.combine(end_day, ends).replace(tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC), int(weeks_text)


@allow(Role.ADMIN, page=True)
async def add_shift(request: web.Request) -> web.StreamResponse:
    """POST /admin/roster: add a shift (or weekly shifts)."""
    form = await read_form(request)
    zone = _zone(request)
    values = {
        k: form.text(k, limit=64)
        for k in ("specialist", "specialty", "date", "start", "end", "weeks")
    }
    try:
        start, end, weeks = _times(form, zone)
        async with db(request) as session:
            await roster.add(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                specialist=values["specialist"],
                specialty=values["specialty"],
                starts_at=start,
                ends_at=end,
                weeks=weeks,
                zone=zone,
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message, values=values)
    week = roster.week_of(start.astimezone(zone).date()).isoformat()
    raise web.HTTPSeeOther(f"/admin/roster?week={week}&done=added")


@allow(Role.ADMIN, page=True)
async def remove_shift(request: web.Request) -> web.StreamResponse:
    """POST /admin/roster/{id}/remove."""
    await read_form(request)
    try:
        async with db(request) as session:
            gone = await roster.remove(
                session=session,
                caller=principal(request),
                audit=recorder(request),
                shift_id=int(request.match_info["id"]),
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    week = roster.week_of(gone.starts_at.astimezone(_zone(request)).date()).isoformat()
    raise web.HTTPSeeOther(f"/admin/roster?week={week}&done=removed")
