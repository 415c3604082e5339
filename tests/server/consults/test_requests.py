"""Consult requests through the API: the contract, scoping, answers, notes and audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.server.consults.helpers import (
    act,
    asked,
    consult,
    on_duty,
    run_out,
    two_cardiologists_on_duty,
)
from tests.server.reading.requests import stored_study
from tests.support import Client, World, audit_actions

FIELDS = {
    "id",
    "status",
    "patient_id",
    "patient_name",
    "clinic",
    "requested_by",
    "specialty",
    "specialist",
    "reason",
    "walk_in",
    "study_uids",
    "scheduled_at",
    "created_at",
    "offered_until",
    "accepted_at",
    "ended_at",
    "notes",
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_gp_asks_a_specialty_and_the_contract_holds(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    study = await stored_study(client, world)
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    before = datetime.now(UTC)
    body = await asked(
        client, world, study_uids=[study], scheduled_at=when.isoformat(), reason=" Chest pain "
    )
    assert set(body) == FIELDS
    assert body["status"] == "requested"
    assert body["patient_id"] == world.patients["alice"]
    assert (body["specialty"], body["specialist"]) == ("cardiology", "cardio")
    assert (body["reason"], body["study_uids"], body["notes"]) == ("Chest pain", [study], [])
    assert _at(body["scheduled_at"]) == when
    offer = _at(body["offered_until"]) - _at(body["created_at"])
    assert offer == timedelta(seconds=60)  # DOORSTEP_CONSULT_OFFER_SECONDS' default
    assert _at(body["created_at"]) >= before - timedelta(seconds=1)
    assert (body["patient_name"], body["clinic"], body["requested_by"]) == (
        "Able^Alice",
        "clinic-a",
        "gp-a",
    )
    assert await consult(client, world, body["id"]) == body
    assert await consult(client, world, body["id"], "cardio") == body
    actions = [a for a, _, _ in await audit_actions(client.app, "consult.")]
    assert actions[:2] == ["consult.request", "consult.offer"]


async def test_accept_end_and_notes(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    body = await asked(client, world)
    status, _ = await act(client, world, body["id"], "note", "gp-a")
    assert status == 415  # no JSON body
    early = await client.post(
        f"/api/v1/consults/{body['id']}/note", json={"text": "x"}, headers=world.auth("gp-a")
    )
    assert early.status == 409  # nobody took it yet
    status, accepted = await act(client, world, body["id"], "accept", "cardio")
    assert status == 200, accepted
    assert set(accepted) == FIELDS
    assert (accepted["status"], accepted["specialist"]) == ("accepted", "cardio")
    assert accepted["offered_until"] is None
    assert accepted["accepted_at"] is not None
    status, again = await act(client, world, body["id"], "accept", "cardio")
    assert status == 409
    assert again["error"]["details"]["status"] == "accepted"
    for user, text in (("cardio", "Start aspirin; refer up."), ("gp-a", "Patient agrees.")):
        response = await client.post(
            f"/api/v1/consults/{body['id']}/note", json={"text": text}, headers=world.auth(user)
        )
        assert response.status == 201, await response.text()
    notes = (await consult(client, world, body["id"]))["notes"]
    assert [(n["author"], n["text"]) for n in notes] == [
        ("cardio", "Start aspirin; refer up."),
        ("gp-a", "Patient agrees."),
    ]
    assert set(notes[0]) == {"id", "author", "text", "created_at", "kind"}
    assert [n["kind"] for n in notes] == ["note", "note"]
    referral = await client.post(
        f"/api/v1/consults/{body['id']}/note",
        json={"text": "Cardiology clinic within two weeks.", "kind": "referral_up"},
        headers=world.auth("cardio"),
    )
    assert referral.status == 201, await referral.text()
    assert (await referral.json())["notes"][-1]["kind"] == "referral_up"
    for bad in (
        {"text": ""},
        {"text": "x" * 10_001},
        {"note": "x"},
        {"text": "hi", "kind": "chat"},
        {"text": "hi", "kind": "gossip"},
    ):
        response = await client.post(
            f"/api/v1/consults/{body['id']}/note", json=bad, headers=world.auth("gp-a")
        )
        assert response.status == 422, bad
    status, ended = await act(client, world, body["id"], "end", "cardio")
    assert status == 200
    assert ended["status"] == "ended"
    assert ended["ended_at"] is not None
    status, _ = await act(client, world, body["id"], "end", "gp-a")
    assert status == 409
    after = await client.post(
        f"/api/v1/consults/{body['id']}/note",
        json={"text": "Follow-up"},
        headers=world.auth("cardio"),
    )
    assert after.status == 201  # notes after the call, too
    actions = [a for a, _, _ in await audit_actions(client.app, "consult.")]
    for action in ("consult.accept", "consult.end"):
        assert actions.count(action) == 1
    assert actions.count("consult.note") == 4


async def test_the_gp_withdraws_a_request(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    body = await asked(client, world)
    status, _ = await act(client, world, body["id"], "end", "cardio")
    assert status == 409  # offered to them: accept or decline
    status, ended = await act(client, world, body["id"], "end", "gp-a")
    assert status == 200
    assert ended["status"] == "ended"
    assert ended["specialist"] is None
    status, _ = await act(client, world, body["id"], "accept", "cardio")
    assert status == 404  # no longer offered to them: not a member


async def test_scoping_another_clinic_and_specialists_not_offered(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    bella = await client.post(
        "/api/v1/consults",
        json={"patient_id": world.patients["bella"], "specialty": "cardiology", "reason": "x"},
        headers=world.auth("gp-a"),
    )
    assert bella.status == 404
    assert (await bella.json())["error"]["code"] == "not_found"
    study_b = await stored_study(client, world, org="clinic-b")
    for uids in ([study_b], ["1.2.3.4.5"]):
        response = await client.post(
            "/api/v1/consults",
            json={
                "patient_id": world.patients["alice"],
                "specialty": "cardiology",
                "reason": "x",
                "study_uids": uids,
            },
            headers=world.auth("gp-a"),
        )
        assert response.status == 404, uids
    body = await asked(client, world)
    for user in ("gp-b", "radio"):
        response = await client.get(f"/api/v1/consults/{body['id']}", headers=world.auth(user))
        assert response.status == 404, user
        listed = await client.get("/api/v1/consults", headers=world.auth(user))
        assert await listed.json() == [], user
    for action in ("accept", "decline"):
        status, _ = await act(client, world, body["id"], action, "radio")
        assert status == 404
    status, _ = await act(client, world, body["id"], "end", "gp-b")
    assert status == 404
    note = await client.post(
        f"/api/v1/consults/{body['id']}/note", json={"text": "x"}, headers=world.auth("gp-b")
    )
    assert note.status == 404
    mine = await client.get("/api/v1/consults", headers=world.auth("gp-a"))
    assert [c["id"] for c in await mine.json()] == [body["id"]]
    offered = await client.get("/api/v1/consults", headers=world.auth("cardio"))
    assert [c["id"] for c in await offered.json()] == [body["id"]]
    assert (await client.get("/api/v1/consults/999999", headers=world.auth("gp-a"))).status == 404
    denied = [o for a, _, o in await audit_actions(client.app, "consult.read") if o != "success"]
    assert denied == ["denied", "denied", "failure"]


async def test_bad_requests_and_roles(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    cases = [
        {"patient_id": alice, "reason": "x"},  # neither specialty nor specialist
        {"patient_id": alice, "specialty": "cardiology", "specialist": "cardio", "reason": "x"},
        {"patient_id": alice, "specialty": "astrology", "reason": "x"},
        {"patient_id": alice, "specialist": "gp-b", "reason": "x"},  # not a specialist
        {"patient_id": alice, "specialist": "nobody", "reason": "x"},
        {"patient_id": alice, "specialty": "cardiology"},  # no reason
        {"patient_id": alice, "specialty": "cardiology", "reason": "x" * 2001},
        {"patient_id": alice, "specialty": "cardiology", "reason": "x", "study_uids": ["a.b"]},
        {"patient_id": alice, "specialty": "cardiology", "reason": "x", "scheduled_at": "soon"},
        {
            "patient_id": alice,
            "specialty": "cardiology",
            "reason": "x",
            "scheduled_at": "2030-01-01T10:00:00",  # no time zone
        },
        {"patient_id": alice, "specialty": "cardiology", "reason": "x", "extra": 1},
        {"patient_id": "alice", "specialty": "cardiology", "reason": "x"},
    ]
    for body in cases:
        response = await client.post("/api/v1/consults", json=body, headers=world.auth("gp-a"))
        assert response.status == 422, (body, await response.text())
    body = {"patient_id": alice, "specialty": "cardiology", "reason": "x"}
    for user in ("cardio", "kiosk", "admin"):
        response = await client.post("/api/v1/consults", json=body, headers=world.auth(user))
        assert response.status == 403, user
    assert (await client.post("/api/v1/consults", json=body)).status == 401
    await on_duty(client, world, "cardio")
    created = await asked(client, world)
    for action in ("accept", "decline"):
        status, _ = await act(client, world, created["id"], action, "gp-a")
        assert status == 403
    for user in ("admin", "kiosk"):
        assert (await client.get("/api/v1/consults", headers=world.auth(user))).status == 403


async def test_a_named_specialist_only(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    body = await asked(client, world, specialist="cardio2")
    assert (body["specialty"], body["specialist"]) == (None, "cardio2")
    status, _ = await act(client, world, body["id"], "accept", "cardio")
    assert status == 404
    status, declined = await act(client, world, body["id"], "decline", "cardio2")
    assert status == 200
    assert (declined["status"], declined["specialist"]) == ("declined", None)
    off_duty = await asked(client, world, specialist="radio")  # named: on duty or not
    assert off_duty["specialist"] == "radio"
    await run_out(client, off_duty["id"])
    assert (await consult(client, world, off_duty["id"]))["status"] == "expired"


async def test_concurrent_accepts_only_one_wins(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    body = await asked(client, world)
    first = body["specialist"]
    other = "cardio2" if first == "cardio" else "cardio"
    answers = await asyncio.gather(
        *(act(client, world, body["id"], "accept", u) for u in (first, first, other, first))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) == 1, answers
    assert set(statuses) <= {200, 404, 409}
    current = await consult(client, world, body["id"])
    assert (current["status"], current["specialist"]) == ("accepted", first)
    actions = [a for a, _, _ in await audit_actions(client.app, "consult.accept")]
    assert len(actions) == 1


async def test_the_accepted_specialist_sees_the_attached_studies_only(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    attached = await stored_study(client, world)
    other = await stored_study(client, world, "CT_small.dcm")
    body = await asked(client, world, study_uids=[attached])
    for study in (attached, other):
        url = f"/dicom-web/studies/{study}/series"
        assert (await client.get(url, headers=world.auth("cardio"))).status == 404
    status, _ = await act(client, world, body["id"], "accept", "cardio")
    assert status == 200
    seen = await client.get(f"/dicom-web/studies/{attached}/series", headers=world.auth("cardio"))
    assert seen.status == 200
    unseen = await client.get(f"/dicom-web/studies/{other}/series", headers=world.auth("cardio"))
    assert unseen.status == 404
    page = await client.get(f"/studies/{attached}/view", headers=world.auth("cardio"))
    assert page.status == 200
