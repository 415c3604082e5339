"""The roster: shifts (admins change them, specialists read their own), coverage gaps,
who is on duty against who is rostered, the people waiting now, the admin page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server import keys
from server.consults.models import Consult
from server.kiosk import roster
from server.kiosk.models import RosterShift
from server.patients.models import Patient
from tests.forms import post_form, sign_in
from tests.server.consults.helpers import on_duty
from tests.support import Client, World, audit_actions, audit_trail

MONDAY = date(2030, 1, 7)  # a Monday


def at(day: date, hour: int, minute: int = 0) -> str:
    """An ISO UTC time on a day."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat()


async def add(client: Client, world: World, user: str = "admin", **fields: Any) -> tuple[int, Any]:
    body = {
        "specialist": "cardio",
        "specialty": "cardiology",
        "start": at(MONDAY, 9),
        "end": at(MONDAY, 12),
    }
    body.update(fields)
    response = await client.post("/api/v1/roster", json=body, headers=world.auth(user))
    return response.status, await response.json()


async def test_admins_add_shifts_others_cannot(client: Client, world: World) -> None:
    status, made = await add(client, world)
    assert status == 201, made
    assert [(s["specialist"], s["specialty"], s["start"], s["end"]) for s in made] == [
        ("cardio", "cardiology", "2030-01-07T09:00:00Z", "2030-01-07T12:00:00Z")
    ]
    for user in ("cardio", "gp-a", "kiosk"):
        status, body = await add(client, world, user)
        assert status == 403, (user, body)
    assert (await client.post("/api/v1/roster", json={})).status == 401
    assert await audit_trail(client.app, "roster.add") == [("admin", str(made[0]["id"]), "success")]


async def test_shifts_are_checked(client: Client, world: World) -> None:
    cases = [
        ({"end": at(MONDAY, 8)}, "ends after it starts"),
        ({"end": at(MONDAY + timedelta(days=2), 8)}, "at most 24 hours"),
        ({"specialty": "radiology"}, "not a radiology specialist"),
        ({"specialist": "gp-a"}, "not an active specialist"),
        ({"specialty": "astrology"}, "Unknown specialty"),
        ({"weeks": 53}, "weeks"),
        ({"start": "2030-01-07T09:00:00"}, "start"),  # no time zone
    ]
    for fields, words in cases:
        status, body = await add(client, world, **fields)
        assert status == 422, (fields, body)
        assert words in body["error"]["message"], (fields, body)
    async with client.app[keys.SESSIONMAKER]() as session:
        assert list(await session.scalars(select(RosterShift))) == []


async def test_weekly_shifts_keep_their_wall_clock_time(client: Client, world: World) -> None:
    client.app[keys.SETTINGS].time_zone = "Europe/London"
    # 09:00 London on 17 Mar 2030 is 09:00 UTC; after the change on 31 Mar it is 08:00 UTC
    status, made = await add(
        client, world, start="2030-03-17T09:00:00Z", end="2030-03-17T10:00:00Z", weeks=3
    )
    assert status == 201, made
    assert [s["start"] for s in made] == [
        "2030-03-17T09:00:00Z",
        "2030-03-24T09:00:00Z",
        "2030-03-31T08:00:00Z",
    ]
    assert len(await audit_trail(client.app, "roster.add")) == 3


async def test_specialists_read_their_own_shifts(client: Client, world: World) -> None:
    await add(client, world)
    await add(
        client,
        world,
        specialist="radio",
        specialty="radiology",
        start=at(MONDAY, 11),
        end=at(MONDAY, 14),
    )
    query = {"from": at(MONDAY, 0), "to": at(MONDAY + timedelta(days=1), 0)}
    everyone = await client.get("/api/v1/roster", params=query, headers=world.auth("admin"))
    assert sorted(s["specialist"] for s in await everyone.json()) == ["cardio", "radio"]
    own = await client.get("/api/v1/roster", params=query, headers=world.auth("radio"))
    assert [s["specialist"] for s in await own.json()] == ["radio"]
    chosen = await client.get(
        "/api/v1/roster", params={**query, "specialty": "cardiology"}, headers=world.auth("admin")
    )
    assert [s["specialty"] for s in await chosen.json()] == ["cardiology"]
    outside = await client.get(
        "/api/v1/roster",
        params={"from": at(MONDAY, 12), "to": at(MONDAY, 13)},
        headers=world.auth("admin"),
    )
    assert [s["specialist"] for s in await outside.json()] == ["radio"]  # cardio ends at 12
    for user in ("gp-a", "kiosk"):
        response = await client.get("/api/v1/roster", params=query, headers=world.auth(user))
        assert response.status == 403


async def test_admins_remove_shifts(client: Client, world: World) -> None:
    _, made = await add(client, world)
    shift = made[0]["id"]
    assert (
        await client.delete(f"/api/v1/roster/{shift}", headers=world.auth("cardio"))
    ).status == 403
    removed = await client.delete(f"/api/v1/roster/{shift}", headers=world.auth("admin"))
    assert removed.status == 200
    assert (await removed.json())["id"] == shift
    again = await client.delete(f"/api/v1/roster/{shift}", headers=world.auth("admin"))
    assert again.status == 404
    assert await audit_trail(client.app, "roster.remove") == [("admin", str(shift), "success")]


async def test_coverage_gaps_of_known_shifts(client: Client, world: World) -> None:
    # Monday 09:00-12:00 cardio; 11:30-13:00 a second shift; Tuesday 22:00 to Wed 02:00.
    await add(client, world)
    await add(client, world, start=at(MONDAY, 11, 30), end=at(MONDAY, 13))
    tuesday = MONDAY + timedelta(days=1)
    await add(client, world, start=at(tuesday, 22), end=at(tuesday + timedelta(days=1), 2))
    await add(client, world, start=at(MONDAY, 14, 15), end=at(MONDAY, 14, 45))
    async with client.app[keys.SESSIONMAKER]() as session:
        found = await roster.coverage(
            session=session,
            week=MONDAY + timedelta(days=3),
            zone=ZoneInfo("UTC"),
            specialties=("cardiology", "radiology"),
        )
    cardiology, radiology = found
    assert [d.day for d in cardiology.days] == [MONDAY + timedelta(days=i) for i in range(7)]
    monday = {h.starts_at.hour: h for h in cardiology.days[0].hours}
    assert [h for h in range(24) if monday[h].state != "gap"] == [9, 10, 11, 12, 14]
    assert monday[11].people == 1
    assert monday[11].minutes == 60
    assert (monday[14].state, monday[14].minutes) == ("partial", 30)
    tue = [h.state for h in cardiology.days[1].hours]
    wed = [h.state for h in cardiology.days[2].hours]
    assert tue[22:] == ["covered", "covered"]
    assert wed[:2] == ["covered", "covered"]
    assert wed[2] == "gap"
    assert cardiology.gaps == 7 * 24 - 5 - 4
    assert radiology.gaps == 7 * 24


async def test_coverage_in_the_deployment_time_zone(client: Client, world: World) -> None:
    await add(client, world, start=at(MONDAY, 1), end=at(MONDAY, 2))  # 09:00 in Shanghai
    async with client.app[keys.SESSIONMAKER]() as session:
        (cardiology,) = await roster.coverage(
            session=session,
            week=MONDAY,
            zone=ZoneInfo("Asia/Shanghai"),
            specialties=("cardiology",),
        )
    covered = [(d.day, h.local.hour) for d in cardiology.days for h in d.hours if h.state != "gap"]
    assert covered == [(MONDAY, 9)]


async def _walk_in(client: Client, world: World, minutes_ago: int) -> int:
    """A corner's person asking for "see an expert now", waiting since minutes_ago."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        person = Patient(
            org_id=world.orgs["corner"],
            name="Corner^Person",
            birth_date=date(1950, 1, 1),
            sex="U",
            identifier="",
        )
        session.add(person)
        await session.flush()
        consult = Consult(
            org_id=world.orgs["corner"],
            patient_id=person.id,
            requested_by=world.users["kiosk"],
            specialty="cardiology",
            walk_in=True,
            status="requested",
            created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        )
        session.add(consult)
        await session.flush()
        return consult.id


async def test_the_roster_page_shows_now_waiting_and_gaps(client: Client, world: World) -> None:
    now = datetime.now(UTC)
    await add(
        client,
        world,
        start=(now - timedelta(hours=1)).isoformat(),
        end=(now + timedelta(hours=1)).isoformat(),
    )
    await on_duty(client, world, "radio")
    waiting = await _walk_in(client, world, 7)
    csrf = await sign_in(client, "admin")
    page = await client.get("/admin/roster")
    assert page.status == 200
    html = await page.text()
    assert 'href="/admin/roster" aria-current="page"' in html
    assert "Corner^Person" not in html
    assert "CORNER" not in html
    assert 'data-waited="' in html
    assert ">corner<" in html
    assert f"{7} min" in html
    assert "rostered, but nobody is on duty" in html  # cardio rostered, not switched on
    assert 'data-state="gap"' in html
    assert 'data-state="covered"' in html
    status, _, location = await post_form(
        client,
        "/admin/roster",
        csrf,
        {
            "specialist": "radio",
            "specialty": "radiology",
            "date": "2030-01-08",
            "start": "22:00",
            "end": "06:00",
            "weeks": "2",
        },
    )
    assert status == 303
    assert location == "/admin/roster?week=2030-01-07&done=added"
    week = await (await client.get(location)).text()
    assert "The shift was added." in week
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = list(
            await session.scalars(
                select(RosterShift)
                .where(RosterShift.specialty == "radiology")
                .order_by(RosterShift.id)
            )
        )
    assert [(r.starts_at.isoformat(), r.ends_at.isoformat()) for r in rows] == [
        ("2030-01-08T22:00:00+00:00", "2030-01-09T06:00:00+00:00"),
        ("2030-01-15T22:00:00+00:00", "2030-01-16T06:00:00+00:00"),
    ]
    status, html, _ = await post_form(
        client,
        "/admin/roster",
        csrf,
        {
            "specialist": "radio",
            "specialty": "cardiology",
            "date": "2030-01-08",
            "start": "09:00",
            "end": "10:00",
        },
    )
    assert status == 422
    assert "not a cardiology specialist" in html
    status, _, location = await post_form(client, f"/admin/roster/{rows[0].id}/remove", csrf)
    assert (status, location) == (303, "/admin/roster?week=2030-01-07&done=removed")
    actions = [a for a, _, _ in await audit_actions(client.app, "roster.")]
    assert actions == ["roster.add", "roster.add", "roster.add", "roster.remove"]
    assert waiting


async def test_only_admins_open_the_roster_page(client: Client, world: World) -> None:
    await sign_in(client, "cardio")
    assert (await client.get("/admin/roster", allow_redirects=False)).status == 403
