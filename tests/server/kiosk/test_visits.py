"""Check-in, vitals with their flags, the end of a visit and a person's history, as a kiosk."""

from __future__ import annotations

import json

from sqlalchemy import select

from server import keys
from server.kiosk.models import KioskPerson, KioskReading
from tests.server.consults.helpers import act, on_duty
from tests.server.kiosk.visits import BIRTH, PHONE, check_in, queue, second_kiosk, vitals
from tests.support import Client, World, audit_actions, audit_events


async def test_a_person_checks_in_and_is_found_again_by_number_and_birth_date(
    client: Client, world: World
) -> None:
    first = await check_in(client, world)
    assert first["returning"] is False
    again = await check_in(client, world, phone="138-0013-8000")
    assert again["returning"] is True
    assert again["person_id"] == first["person_id"]
    assert again["id"] != first["id"]
    other_birthday = await check_in(client, world, birth_date="1950-03-09")
    assert other_birthday["person_id"] != first["person_id"]
    by_id = await check_in(client, world, id_number="11010519491231002x")
    assert by_id["returning"] is False
    assert (await check_in(client, world, id_number="11010519491231002X"))["returning"] is True
    async with client.app[keys.SESSIONMAKER]() as session:
        lookups = list(await session.scalars(select(KioskPerson.lookup)))
    assert all("13800138000" not in key and len(key) == 64 for key in lookups)
    assert ("kiosk.check_in", "kiosk", "success") in await audit_actions(client.app, "kiosk.")


async def test_a_check_in_without_consent_or_a_usable_number_is_refused_by_field(
    client: Client, world: World
) -> None:
    for fields, field in (
        ({"consent": False}, "consent"),
        ({"phone": "12"}, "phone"),
        ({"phone": PHONE, "id_number": "A12345"}, "phone"),
        ({"id_number": "no!"}, "id_number"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
    ):
        refused = await check_in(client, world, expect=422, **fields)
        assert refused["error"]["details"]["field"] == field, refused
    response = await client.post(
        "/api/v1/kiosk/visits",
        json={"phone": PHONE, "birth_date": BIRTH, "consent": True},
        headers=world.auth("gp-a"),
    )
    assert response.status == 403


async def test_vitals_give_the_triage_flags_of_the_visit_so_far(
    client: Client, world: World
) -> None:
    visit = (await check_in(client, world))["id"]
    first = await vitals(client, world, visit, systolic=185, diastolic=95, heart_rate=80)
    assert first["flags"][0]["code"] == "hypertensive_crisis"
    assert first["flags"][0]["severity"] == "urgent"
    assert first["flags"][0]["message"]
    assert first["vitals"]["systolic"] == 185
    second = await vitals(client, world, visit, systolic=128, diastolic=82, spo2=88)
    assert second["vitals"]["heart_rate"] == 80  # kept from the first post
    assert second["vitals"]["systolic"] == 128
    assert [f["code"] for f in second["flags"]] == ["very_low_oxygen"]


async def test_an_implausible_value_is_refused_naming_it_and_nothing_is_kept(
    client: Client, world: World
) -> None:
    visit = (await check_in(client, world))["id"]
    refused = await vitals(client, world, visit, expect=422, systolic=400, diastolic=90)
    assert refused["error"]["details"]["field"] == "systolic"
    assert "400" in refused["error"]["message"]
    inverted = await vitals(client, world, visit, expect=422, systolic=100, diastolic=120)
    assert inverted["error"]["details"]["field"] == "diastolic"
    empty = await vitals(client, world, visit, expect=422)
    assert empty["error"]["details"]["field"] == "systolic"
    async with client.app[keys.SESSIONMAKER]() as session:
        assert list(await session.scalars(select(KioskReading.id))) == []


async def test_a_chinese_visit_gets_its_flags_and_refusals_in_chinese(
    client: Client, world: World
) -> None:
    visit = (await check_in(client, world, language="zh"))["id"]
    flagged = await vitals(client, world, visit, systolic=190, diastolic=100)
    message = flagged["flags"][0]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message
    refused = await vitals(client, world, visit, expect=422, temperature_c=50)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused["error"]["message"]), refused


async def test_the_next_check_in_finish_and_reset_close_the_visit_for_good(
    client: Client, world: World
) -> None:
    first = (await check_in(client, world))["id"]
    second = (await check_in(client, world, phone="13900000001"))["id"]
    gone = await client.get(f"/api/v1/kiosk/visits/{first}", headers=world.auth("kiosk"))
    assert gone.status == 404
    assert (
        await client.get(f"/api/v1/kiosk/visits/{second}", headers=world.auth("kiosk"))
    ).status == 200
    finished = await client.post(
        f"/api/v1/kiosk/visits/{second}/finish", json={"how": "reset"}, headers=world.auth("kiosk")
    )
    assert finished.status == 204
    for path in ("", "/vitals", "/queue", "/summary"):
        response = await client.get(
            f"/api/v1/kiosk/visits/{second}{path}", headers=world.auth("kiosk")
        )
        assert response.status in (404, 405), (path, response.status)
    closes = [a for a in await audit_actions(client.app, "kiosk.visit.") if a[0].endswith("close")]
    assert len(closes) == 2
    assert ("kiosk.visit.read", "kiosk", "denied") in await audit_actions(client.app, "kiosk.")


async def test_a_kiosk_sees_only_its_own_open_visit_and_its_person(
    client: Client, world: World
) -> None:
    await second_kiosk(client, world)
    mine = await check_in(client, world)
    theirs = await check_in(client, world, kiosk="kiosk2", phone="13900000002")
    await vitals(client, world, theirs["id"], kiosk="kiosk2", systolic=120, diastolic=80)
    for path in (
        f"/api/v1/kiosk/visits/{theirs['id']}",
        f"/api/v1/kiosk/visits/{theirs['id']}/summary",
        f"/api/v1/kiosk/people/{theirs['person_id']}/vitals",
    ):
        response = await client.get(path, headers=world.auth("kiosk"))
        assert response.status == 404, path
    own = await client.get(
        f"/api/v1/kiosk/people/{mine['person_id']}/vitals", headers=world.auth("kiosk")
    )
    assert own.status == 200
    for path in (
        f"/api/v1/patients/{world.patients['alice']}",
        "/api/v1/patients?q=Able",
        "/dicom-web/studies",
        "/api/v1/consults",
        "/api/v1/worklist",
    ):
        response = await client.get(path, headers=world.auth("kiosk"))
        assert response.status in (403, 404), (path, response.status)
    denied = [a for a in await audit_actions(client.app) if a[2] == "denied" and a[1] == "kiosk"]
    assert len(denied) >= 3


async def test_the_history_is_per_visit_oldest_first_and_the_specialist_of_the_consult_sees_it(
    client: Client, world: World
) -> None:
    for systolic in (150, 142, 136):
        visit = (await check_in(client, world))["id"]
        await vitals(client, world, visit, systolic=systolic, diastolic=88)
        await vitals(client, world, visit, heart_rate=70)
    person = (await check_in(client, world))["person_id"]
    history = await client.get(f"/api/v1/kiosk/people/{person}/vitals", headers=world.auth("kiosk"))
    body = await history.json()
    assert [r["systolic"] for r in body["readings"]] == [150, 142, 136]
    assert all(r["heart_rate"] == 70 for r in body["readings"])
    assert [r["flags"] for r in body["readings"]] == [["high_blood_pressure"]] * 2 + [[]]
    path = f"/api/v1/kiosk/people/{person}/vitals"
    assert (await client.get(path, headers=world.auth("cardio"))).status == 404
    visit = (await check_in(client, world))["id"]
    await vitals(client, world, visit, systolic=182, diastolic=100)
    await on_duty(client, world, "cardio")
    status, place = await queue(client, world, visit)
    assert status == 201
    assert (await client.get(path, headers=world.auth("cardio"))).status == 200  # offered
    assert (await client.get(path, headers=world.auth("radio"))).status == 404
    assert (await client.get(path, headers=world.auth("gp-a"))).status == 404  # not linked
    status, _ = await act(client, world, place["consult_id"], "accept", "cardio")
    assert status == 200
    assert (await client.get(path, headers=world.auth("cardio"))).status == 200


async def test_a_person_who_links_to_their_clinic_is_seen_there_and_nowhere_else(
    client: Client, world: World
) -> None:
    visit = await check_in(client, world)
    await vitals(client, world, visit["id"], systolic=165, diastolic=92)
    listed = await client.get("/api/v1/kiosk/clinics", headers=world.auth("kiosk"))
    names = {c["name"]: c["id"] for c in await listed.json()}
    assert set(names) == {"clinic-a", "clinic-b"}  # clinics only: no hospital, no corner
    path = f"/api/v1/kiosk/visits/{visit['id']}/clinic"
    refused = await client.put(
        path, json={"clinic_id": world.orgs["hospital"]}, headers=world.auth("kiosk")
    )
    assert refused.status == 422
    linked = await client.put(
        path, json={"clinic_id": names["clinic-a"]}, headers=world.auth("kiosk")
    )
    assert (await linked.json())["clinic"]["name"] == "clinic-a"
    seen = await (
        await client.get("/api/v1/kiosk/clinic-visits", headers=world.auth("gp-a"))
    ).json()
    assert [(v["visit_id"], v["vitals"]["systolic"]) for v in seen] == [(visit["id"], 165)]
    assert seen[0]["flags"][0]["code"] == "high_blood_pressure"
    assert seen[0]["corner"] == "corner"
    other = await (
        await client.get("/api/v1/kiosk/clinic-visits", headers=world.auth("gp-b"))
    ).json()
    assert other == []
    history = f"/api/v1/kiosk/people/{visit['person_id']}/vitals"
    assert (await client.get(history, headers=world.auth("gp-a"))).status == 200
    assert (await client.get(history, headers=world.auth("gp-b"))).status == 404
    unlinked = await client.put(path, json={"clinic_id": None}, headers=world.auth("kiosk"))
    assert (await unlinked.json())["clinic"] is None
    assert (await client.get(history, headers=world.auth("gp-a"))).status == 404
    actions = [a for a, _, _ in await audit_actions(client.app, "kiosk.")]
    assert "kiosk.link" in actions
    assert "kiosk.unlink" in actions


async def test_a_cuff_bridge_finds_the_open_visit_and_posts_as_the_device(
    client: Client, world: World
) -> None:
    nobody = await client.get("/api/v1/kiosk/visits/current", headers=world.auth("kiosk"))
    assert nobody.status == 404
    visit = (await check_in(client, world))["id"]
    current = await (
        await client.get("/api/v1/kiosk/visits/current", headers=world.auth("kiosk"))
    ).json()
    assert current["id"] == visit
    posted = await vitals(
        client, world, current["id"], systolic=142, diastolic=91, heart_rate=77, source="device"
    )
    assert posted["vitals"]["heart_rate"] == 77
    events = await audit_events(client.app, "kiosk.vitals")
    assert json.loads(events[-1].details or "{}")["source"] == "device"


async def test_an_unknown_or_revoked_device_is_refused_and_audited(
    client: Client, world: World
) -> None:
    unknown = await client.post(
        "/api/v1/kiosk/visits",
        json={"phone": PHONE, "birth_date": BIRTH, "consent": True},
        headers={"Authorization": "Bearer dst_not-a-device"},
    )
    assert unknown.status == 401
    cookie = await client.get(
        "/api/v1/kiosk/visits/current", headers={"Cookie": "doorstep_kiosk=dst_forged"}
    )
    assert cookie.status == 401
    refused = await audit_events(client.app, "auth.credential")
    assert [(e.outcome, json.loads(e.details or "{}")["via"]) for e in refused] == [
        ("denied", "bearer"),
        ("denied", "kiosk_cookie"),
    ]
    assert "dst_" not in " ".join(e.details or "" for e in refused)
