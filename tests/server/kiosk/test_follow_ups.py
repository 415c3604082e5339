"""Follow-ups booked at a kiosk: slots from the roster minus bookings, the booking race,
refusals, joining at the kiosk, the home link around its time, the calendar file and the
specialist's reminder."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from server import keys
from server.accounts import service as accounts
from server.accounts.models import User
from server.app import create_app
from server.consults.models import Consult
from server.db import transaction
from server.errors import Conflict, NotFound
from server.identity import Actor, OrgKind, Principal, Role
from server.kiosk import followups
from server.kiosk.lifetime import remind_once
from server.kiosk.models import KioskFollowUp, KioskPerson, KioskVisit
from server.patients.models import Patient
from server.settings import Settings
from tests.forms import sign_in
from tests.support import PASSWORD, Client, World, audit_actions, audit_events, audit_trail


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings; the app's own reminder watch does not run during a test."""
    return settings.model_copy(update={"kiosk_reminder_seconds": 3600.0})


def tomorrow_at(hour: int) -> datetime:
    """Tomorrow at an hour (UTC): inside the booking window whatever the time now."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def kiosk_device(client: Client, world: World, username: str, corner: str = "corner") -> None:
    """Another kiosk (in a corner, made when it does not exist); its token in world.tokens."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        try:
            org = await accounts.get_org_by_name(session=session, name=corner)
        except NotFound:
            org = await accounts.add_org(session=session, name=corner, kind=OrgKind.CORNER)
            world.orgs[corner] = org.id
        user = await accounts.add_user(
            session=session, username=username, org=org, role=Role.KIOSK, password=PASSWORD
        )
        world.users[username] = user.id
        world.tokens[username] = (await accounts.create_token(session=session, user=user)).token


async def checked_in(
    client: Client, world: World, kiosk: str = "kiosk", *, person: int | None = None
) -> tuple[int, int]:
    """A person checked in at a kiosk now (rows made directly): (visit id, person id)."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        device = world.users[kiosk]
        org = await session.scalar(select(User.org_id).where(User.id == device))
        assert org is not None
        if person is None:
            patient = Patient(
                org_id=org,
                name="Wang^Fang",
                birth_date=date(1948, 5, 6),
                sex="F",
                identifier=f"corner-{secrets.token_hex(6)}",
            )
            session.add(patient)
            await session.flush()
            session.add(
                KioskPerson(
                    patient_id=patient.id,
                    org_id=org,
                    lookup=f"lookup-{patient.id}",
                    identified_by="phone",
                )
            )
            person = patient.id
        visit = KioskVisit(device_id=device, org_id=org, person_id=person, language="en")
        session.add(visit)
        await session.flush()
        return visit.id, person


async def shift(
    client: Client,
    world: World,
    start: datetime,
    end: datetime,
    specialist: str = "cardio",
    specialty: str = "cardiology",
) -> None:
    response = await client.post(
        "/api/v1/roster",
        json={
            "specialist": specialist,
            "specialty": specialty,
            "start": iso(start),
            "end": iso(end),
        },
        headers=world.auth("admin"),
    )
    assert response.status == 201, await response.text()


async def slots(
    client: Client, world: World, visit: int, kiosk: str = "kiosk", specialty: str = "cardiology"
) -> tuple[int, Any]:
    response = await client.get(
        f"/api/v1/kiosk/visits/{visit}/slots",
        params={"specialty": specialty},
        headers=world.auth(kiosk),
    )
    return response.status, await response.json()


async def book(
    client: Client, world: World, visit: int, slot: str, where: str = "kiosk", kiosk: str = "kiosk"
) -> tuple[int, Any]:
    response = await client.post(
        f"/api/v1/kiosk/visits/{visit}/follow-ups",
        json={"slot": slot, "where": where},
        headers=world.auth(kiosk),
    )
    return response.status, await response.json()


async def move(client: Client, follow_up: int, start: datetime) -> None:
    """Move a booked follow-up in time (what waiting for the booked day would do)."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(KioskFollowUp)
            .where(KioskFollowUp.id == follow_up)
            .values(starts_at=start, ends_at=start + timedelta(minutes=15))
        )


async def test_slots_are_the_roster_minus_bookings(client: Client, world: World) -> None:
    visit, _ = await checked_in(client, world)
    status, body = await slots(client, world, visit)
    assert (status, body) == (200, {"specialty": "cardiology", "slots": []})
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    await shift(client, world, nine, nine + timedelta(hours=1), "radio", "radiology")
    status, body = await slots(client, world, visit)
    assert status == 200
    assert [(s["start"], s["end"], s["specialist"]) for s in body["slots"]] == [
        (iso(nine + timedelta(minutes=m)), iso(nine + timedelta(minutes=m + 15)), "cardio")
        for m in (0, 15, 30, 45)
    ]
    status, made = await book(client, world, visit, body["slots"][1]["id"])
    assert status == 201, made
    assert made == {
        "id": made["id"],
        "start": iso(nine + timedelta(minutes=15)),
        "end": iso(nine + timedelta(minutes=30)),
        "specialist": "cardio",
        "specialty": "cardiology",
        "where": "kiosk",
        "home_url": None,
    }
    other, _ = await checked_in(client, world)
    _, after = await slots(client, world, other)
    assert [s["start"] for s in after["slots"]] == [
        iso(nine + timedelta(minutes=m)) for m in (0, 30, 45)
    ]
    client.app[keys.SETTINGS].kiosk_follow_up_minutes = 20
    _, longer = await slots(client, world, other)
    assert [s["start"] for s in longer["slots"]] == [iso(nine + timedelta(minutes=40))]
    assert await audit_trail(client.app, "kiosk.follow_up.book") == [
        ("kiosk", str(made["id"]), "success")
    ]


async def test_slots_start_at_the_next_hour_and_are_at_most_40(
    client: Client, world: World
) -> None:
    visit, _ = await checked_in(client, world)
    now = datetime.now(UTC)
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    await shift(client, world, next_hour - timedelta(hours=3), next_hour + timedelta(hours=20))
    _, body = await slots(client, world, visit)
    assert len(body["slots"]) == 40
    assert body["slots"][0]["start"] == iso(next_hour)
    starts = [s["start"] for s in body["slots"]]
    assert starts == sorted(starts)
    status, wrong = await slots(client, world, visit, specialty="astrology")
    assert status == 422, wrong


@pytest.mark.parametrize("run", [1, 2])
async def test_two_kiosks_booking_one_slot_one_wins(
    client: Client, world: World, backend: str, run: int
) -> None:
    await kiosk_device(client, world, "kiosk2")
    first, _ = await checked_in(client, world)
    second, _ = await checked_in(client, world, "kiosk2")
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(minutes=15))
    _, body = await slots(client, world, first)
    (slot,) = body["slots"]
    answers = await asyncio.gather(
        book(client, world, first, slot["id"], "home"),
        book(client, world, second, slot["id"], kiosk="kiosk2"),
    )
    assert sorted(status for status, _ in answers) == [201, 409], answers
    lost = next(body for status, body in answers if status == 409)
    assert lost["error"]["message"] == followups.TAKEN
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = list(await session.scalars(select(KioskFollowUp)))
    assert len(rows) == 1
    (row,) = rows
    twin = KioskFollowUp(
        person_id=row.person_id,
        org_id=row.org_id,
        device_id=row.device_id,
        specialist_id=row.specialist_id,
        specialty=row.specialty,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        where="kiosk",
    )
    async with client.app[keys.SESSIONMAKER]() as session:
        session.add(twin)
        with pytest.raises(IntegrityError):  # the database itself refuses a second booking
            await session.flush()
    outcomes = sorted(o for _, _, o in await audit_trail(client.app, "kiosk.follow_up.book"))
    assert outcomes == ["failure", "success"]


async def test_another_corner_or_visit_is_refused_and_audited(client: Client, world: World) -> None:
    await kiosk_device(client, world, "kiosk-b", corner="corner-b")
    visit, person = await checked_in(client, world)
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    _, body = await slots(client, world, visit)
    status, _ = await slots(client, world, visit, kiosk="kiosk-b")
    assert status == 404
    status, _ = await book(client, world, visit, body["slots"][0]["id"], kiosk="kiosk-b")
    assert status == 404
    status, _ = await slots(client, world, 999_999)
    assert status == 404
    for user in ("gp-a", "cardio", "admin"):
        response = await client.get(
            f"/api/v1/kiosk/visits/{visit}/slots",
            params={"specialty": "cardiology"},
            headers=world.auth(user),
        )
        assert response.status == 403, user
    status, made = await book(client, world, visit, body["slots"][0]["id"])
    assert status == 201
    status, again = await book(client, world, visit, body["slots"][1]["id"])
    assert status == 409, again  # one follow-up per visit
    status, bad = await book(client, world, visit, "bm9uc2Vuc2U")
    assert status == 422, bad
    # another person's visit at the same kiosk cannot join this person's follow-up
    other, _ = await checked_in(client, world)
    response = await client.post(
        f"/api/v1/kiosk/visits/{other}/follow-ups/{made['id']}/join", headers=world.auth("kiosk")
    )
    assert response.status == 404
    # a visit that was closed is over
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(KioskVisit).where(KioskVisit.id == visit).values(closed_at=datetime.now(UTC))
        )
    status, _ = await slots(client, world, visit)
    assert status == 404
    refused = [
        (action, actor, outcome)
        for action, actor, outcome in await audit_actions(client.app, "kiosk.follow_up.")
        if outcome != "success"
    ]
    assert refused == [
        ("kiosk.follow_up.slots", "kiosk-b", "denied"),
        ("kiosk.follow_up.book", "kiosk-b", "denied"),
        ("kiosk.follow_up.slots", "kiosk", "failure"),
        ("kiosk.follow_up.join", "kiosk", "denied"),
        ("kiosk.follow_up.slots", "kiosk", "denied"),
    ]
    assert person


async def test_joining_at_the_kiosk_at_the_booked_time(client: Client, world: World) -> None:
    visit, person = await checked_in(client, world)
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    _, body = await slots(client, world, visit)
    _, made = await book(client, world, visit, body["slots"][0]["id"])
    join = f"/api/v1/kiosk/visits/{visit}/follow-ups/{made['id']}/join"
    early = await client.post(join, headers=world.auth("kiosk"))
    assert early.status == 409
    soon = datetime.now(UTC) + timedelta(minutes=5)
    await move(client, made["id"], soon)
    async with client.app[keys.SESSIONMAKER]() as session:
        due = await followups.due_follow_up(
            session=session, person_id=person, now=datetime.now(UTC)
        )
        in_visit = await followups.booked(session=session, visit_id=visit)
        later = await followups.due_follow_up(
            session=session, person_id=person, now=soon + timedelta(minutes=31)
        )
    assert due is not None
    assert due == in_visit
    assert later is None
    assert due.out()["start"] == iso(soon)
    bus = client.app[keys.EVENT_BUS]
    async with bus.subscribe(f"user:{world.users['cardio']}") as heard:
        joined = await client.post(join, headers=world.auth("kiosk"))
        assert joined.status == 201, await joined.text()
        consult_id = (await joined.json())["consult_id"]
        offered = await asyncio.wait_for(anext(heard), 5)
    assert offered.event["type"] == "consult.offered"
    assert offered.event["consult"]["id"] == consult_id
    again = await client.post(join, headers=world.auth("kiosk"))
    assert (again.status, (await again.json())["consult_id"]) == (201, consult_id)
    queue = f"/api/v1/kiosk/visits/{visit}/queue"  # the kiosk follows it as a walk-in's
    waiting = await (await client.get(queue, headers=world.auth("kiosk"))).json()
    assert (waiting["consult_id"], waiting["status"], waiting["position"]) == (
        consult_id,
        "waiting",
        1,
    )
    accepted = await client.post(
        f"/api/v1/consults/{consult_id}/accept", headers=world.auth("cardio")
    )
    assert accepted.status == 200
    taken = await (await client.get(queue, headers=world.auth("kiosk"))).json()
    assert taken["status"] == "accepted"
    assert taken["specialist"]
    async with client.app[keys.SESSIONMAKER]() as session:
        consult = await session.get(Consult, consult_id)
    assert consult is not None
    assert (consult.patient_id, consult.requested_by, consult.named_specialist_id) == (
        person,
        world.users["kiosk"],
        world.users["cardio"],
    )
    assert [a for a, _, _ in await audit_actions(client.app, "kiosk.follow_up.join")] == [
        "kiosk.follow_up.join"
    ]
    if soon.date() == datetime.now(UTC).date():  # the roster page lists today's follow-ups
        await sign_in(client, "admin")
        html = await (await client.get("/admin/roster")).text()
        assert "No follow-ups today." not in html
        assert "At the kiosk" in html
        assert "Wang" not in html


async def test_the_home_link_before_at_and_after_its_time(client: Client, world: World) -> None:
    visit, person = await checked_in(client, world)
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    _, body = await slots(client, world, visit)
    status, made = await book(client, world, visit, body["slots"][0]["id"], "home")
    assert status == 201
    url = urlsplit(made["home_url"])
    assert re.fullmatch(r"/kiosk/follow-ups/[A-Za-z0-9_-]{43}", url.path)  # a random token only
    assert not url.query
    before = await client.get(url.path)
    assert before.status == 200
    html = await before.text()
    assert "Your video follow-up with Dr cardio is on" in html
    assert "Open this page again then." in html
    assert f'href="{url.path}.ics"' in html
    async with client.app[keys.SESSIONMAKER]() as session:
        assert list(await session.scalars(select(Consult))) == []
    await move(client, made["id"], datetime.now(UTC) + timedelta(minutes=5))
    waiting = await client.get(url.path)
    assert waiting.status == 200
    assert waiting.headers["Refresh"] == "10"
    assert "has been told that you are here" in await waiting.text()
    again = await client.get(url.path)
    assert again.status == 200
    async with client.app[keys.SESSIONMAKER]() as session:
        (consult,) = list(await session.scalars(select(Consult)))
    assert consult.named_specialist_id == world.users["cardio"]
    assert consult.patient_id == person
    accepted = await client.post(
        f"/api/v1/consults/{consult.id}/accept", headers=world.auth("cardio")
    )
    assert accepted.status == 200, await accepted.text()
    onward = await client.get(url.path, allow_redirects=False)
    assert onward.status == 303
    assert onward.headers["Location"].startswith("/consults/guest/")
    call = await client.get(url.path)
    assert call.status == 200
    assert call.url.path == f"/consults/{consult.id}"  # through the guest link, into the call
    back = await client.get(url.path, allow_redirects=False)  # a guest of it already
    assert back.headers["Location"] == f"/consults/{consult.id}"
    await move(client, made["id"], datetime.now(UTC) - timedelta(minutes=31))
    after = await client.get(url.path)
    assert after.status == 410
    assert "has passed" in await after.text()
    unknown = await client.get("/kiosk/follow-ups/not-a-real-token")
    assert unknown.status == 404
    trail = [
        (actor, outcome)
        for actor, _, outcome in await audit_trail(client.app, "kiosk.follow_up.home")
    ]
    me = f"follow-up:{made['id']}"
    assert trail == [
        (me, "denied"),  # early
        (me, "success"),  # the consult asked
        (me, "success"),  # a guest link (not followed)
        (me, "success"),  # a guest link, followed into the call
        (me, "denied"),  # late
        ("anonymous", "failure"),  # unknown
    ]
    invited = await audit_trail(client.app, "consult.guest.invite")
    assert [actor for actor, _, _ in invited] == [me, me]


def unfold(text: str) -> list[str]:
    """The content lines of an iCalendar text (RFC 5545 3.1: CRLF, folded lines joined)."""
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


async def test_the_calendar_file(client: Client, world: World) -> None:
    visit, _ = await checked_in(client, world)
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    _, body = await slots(client, world, visit)
    _, made = await book(client, world, visit, body["slots"][2]["id"], "home")
    path = urlsplit(made["home_url"]).path
    response = await client.get(f"{path}.ics")
    assert response.status == 200
    assert response.content_type == "text/calendar"
    lines = unfold(await response.text())
    assert all(len(line.encode()) <= 75 for line in (await response.text()).split("\r\n"))
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value)
    assert lines[0] == "BEGIN:VCALENDAR"
    assert lines[-1] == "END:VCALENDAR"
    assert fields["VERSION"] == ["2.0"]
    assert fields["BEGIN"] == ["VCALENDAR", "VEVENT", "VALARM"]
    assert fields["DTSTART"] == [(nine + timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ")]
    assert fields["DTEND"] == [(nine + timedelta(minutes=45)).strftime("%Y%m%dT%H%M%SZ")]
    assert fields["URL"] == [made["home_url"]]
    assert fields["SUMMARY"] == ["Video follow-up with cardio"]
    assert fields["TRIGGER"] == ["-PT15M"]
    assert fields["ACTION"] == ["DISPLAY"]
    assert fields["UID"][0].startswith(f"kiosk-follow-up-{made['id']}@")
    assert made["home_url"].replace(",", "\\,") in fields["DESCRIPTION"][0]
    assert (await client.get("/kiosk/follow-ups/unknown.ics")).status == 404


async def test_the_reminder_fires_once_with_two_watchers(
    client: Client, world: World, backend: str
) -> None:
    visit, _ = await checked_in(client, world)
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(hours=1))
    _, body = await slots(client, world, visit)
    _, made = await book(client, world, visit, body["slots"][0]["id"])
    assert await remind_once(client.app) == []  # tomorrow: not yet
    await move(client, made["id"], datetime.now(UTC) + timedelta(minutes=9))
    bus = client.app[keys.EVENT_BUS]
    async with bus.subscribe(f"user:{world.users['cardio']}") as heard:
        sent = await asyncio.gather(remind_once(client.app), remind_once(client.app))
        assert sorted(sent) == [[], [made["id"]]]
        reminder = await asyncio.wait_for(anext(heard), 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(heard), 0.5)
    assert reminder.event["type"] == "follow_up.reminder"
    assert reminder.event["follow_up"]["id"] == made["id"]
    assert reminder.event["follow_up"]["corner"] == "corner"
    assert await remind_once(client.app) == []


async def _kiosk_caller(client: Client, username: str) -> Principal:
    async with client.app[keys.SESSIONMAKER]() as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return Principal.of(user, via="test")


async def test_the_unique_slot_decides_when_both_saw_it_free(
    client: Client, world: World, backend: str
) -> None:
    """The second booking passes the free-slot check (the first has not committed yet) and
    is stopped by the database's unique (specialist, start): a 409, not a double booking."""
    await kiosk_device(client, world, "kiosk2")
    first, _ = await checked_in(client, world)
    second, _ = await checked_in(client, world, "kiosk2")
    nine = tomorrow_at(9)
    await shift(client, world, nine, nine + timedelta(minutes=15))
    _, body = await slots(client, world, first)
    (slot,) = body["slots"]
    app = client.app
    booked_first, release = asyncio.Event(), asyncio.Event()

    async def attempt(kiosk: str, visit: int, hold: bool) -> str:
        caller = await _kiosk_caller(client, kiosk)
        audit = app[keys.AUDIT].recorder(Actor(caller.user_id, kiosk, caller.org_id))
        try:
            async with transaction(app[keys.SESSIONMAKER]) as session:
                await followups.book(
                    session=session,
                    caller=caller,
                    audit=audit,
                    visit_id=visit,
                    slot=slot["id"],
                    where="kiosk",
                    now=datetime.now(UTC),
                    minutes=15,
                )
                if hold:
                    booked_first.set()
                    await release.wait()  # not committed yet
        except Conflict:
            return "conflict"
        return "booked"

    async def second_one() -> str:
        await booked_first.wait()
        return await attempt("kiosk2", second, False)

    async def let_go() -> None:
        await booked_first.wait()
        await asyncio.sleep(0.5)  # the second is past its check, waiting on the insert
        release.set()

    results = await asyncio.gather(attempt("kiosk", first, True), second_one(), let_go())
    assert results[:2] == ["booked", "conflict"]
    details = [e.details for e in await audit_events(app, "kiosk.follow_up.book")]
    assert '"reason":"slot taken meanwhile"' in details[-1]


async def test_the_background_watch_reminds_the_specialist(
    settings: Settings, world: World
) -> None:
    quick = settings.model_copy(update={"kiosk_reminder_seconds": 0.1})
    async with TestClient(TestServer(create_app(quick))) as client:
        visit, _ = await checked_in(client, world)
        nine = tomorrow_at(9)
        await shift(client, world, nine, nine + timedelta(hours=1))
        _, body = await slots(client, world, visit)
        _, made = await book(client, world, visit, body["slots"][0]["id"], "home")
        async with client.app[keys.EVENT_BUS].subscribe(f"user:{world.users['cardio']}") as heard:
            await move(client, made["id"], datetime.now(UTC) + timedelta(minutes=10))
            reminder = await asyncio.wait_for(anext(heard), 10)
    assert reminder.event["type"] == "follow_up.reminder"
    assert reminder.event["follow_up"]["id"] == made["id"]
    assert reminder.event["follow_up"]["where"] == "home"
    assert reminder.event["follow_up"]["home_url"] is None  # the person's link is theirs
