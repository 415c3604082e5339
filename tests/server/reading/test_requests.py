"""Reading requests and worklists through the API: the contract, scoping, claims, drafts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from server import keys
from server.reading.lifetime import watch_once
from server.reading.models import ReadingRequest
from tests.forms import post_form, sign_in
from tests.server.reading.people import second_cardiologist
from tests.server.reading.requests import asked, stored_study
from tests.support import Client, World, audit_actions


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _expire_lease(client: Client, request_id: int) -> None:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ReadingRequest)
            .where(ReadingRequest.id == request_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_gp_asks_and_the_contract_holds(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    before = datetime.now(UTC)
    body = await asked(client, world, study, priority="stat", specialty="cardiology")
    assert set(body) == {
        "id",
        "status",
        "study_uid",
        "specialty",
        "priority",
        "due_at",
        "created_at",
    }
    assert body["status"] == "waiting"
    assert body["study_uid"] == study
    assert (body["specialty"], body["priority"]) == ("cardiology", "stat")
    due = _at(body["due_at"]) - _at(body["created_at"])
    assert due == timedelta(minutes=30)
    assert _at(body["created_at"]) >= before - timedelta(seconds=1)
    assert ("reading.request", "gp-a", "success") in await audit_actions(client.app, "reading.")


async def test_sla_by_priority_and_the_default_specialty(client: Client, world: World) -> None:
    ecg = await stored_study(client, world)
    ct = await stored_study(client, world, "CT_small.dcm")
    urgent = await asked(client, world, ecg, priority="urgent")
    routine = await asked(client, world, ct)
    assert urgent["specialty"] == "cardiology"
    assert routine["specialty"] == "radiology"
    assert _at(urgent["due_at"]) - _at(urgent["created_at"]) == timedelta(hours=4)
    assert _at(routine["due_at"]) - _at(routine["created_at"]) == timedelta(hours=24)


async def test_another_clinic_s_or_an_unknown_study_is_404(client: Client, world: World) -> None:
    study = await stored_study(client, world, org="clinic-b")
    for uid in (study, "1.2.3.4.5"):
        response = await client.post(
            "/api/v1/reading-requests", json={"study_uid": uid}, headers=world.auth("gp-a")
        )
        assert response.status == 404, await response.text()
        assert (await response.json())["error"]["code"] == "not_found"


async def test_bad_requests_are_refused_plainly(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    cases = [
        ({"study_uid": study, "priority": "asap"}, 422),
        ({"study_uid": study, "specialty": "astrology"}, 422),
        ({"study_uid": "not-a-uid"}, 422),
        ({"study_uid": study, "question": "x" * 2001}, 422),
        ({"study_uid": study, "extra": 1}, 422),
    ]
    for body, status in cases:
        response = await client.post(
            "/api/v1/reading-requests", json=body, headers=world.auth("gp-a")
        )
        assert response.status == status, (body, await response.text())
    for user in ("cardio", "kiosk", "admin"):
        response = await client.post(
            "/api/v1/reading-requests", json={"study_uid": study}, headers=world.auth(user)
        )
        assert response.status == 403, user
    response = await client.post("/api/v1/reading-requests", json={"study_uid": study})
    assert response.status == 401


async def test_the_request_alone_opens_the_study_to_its_specialty(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    url = f"/dicom-web/studies/{study}/series"
    assert (await client.get(url, headers=world.auth("cardio"))).status == 404
    await asked(client, world, study, specialty="cardiology")
    assert (await client.get(url, headers=world.auth("cardio"))).status == 200
    assert (await client.get(url, headers=world.auth("radio"))).status == 404
    assert (await client.get(url, headers=world.auth("gp-b"))).status == 404
    page = await client.get(f"/studies/{study}/view", headers=world.auth("cardio"))
    assert page.status == 200


async def test_worklist_shows_only_my_specialties_most_urgent_first(
    client: Client, world: World
) -> None:
    ecg = await stored_study(client, world)
    ct = await stored_study(client, world, "CT_small.dcm")
    routine = await asked(client, world, ecg, specialty="cardiology")
    stat = await asked(client, world, ecg, specialty="cardiology", priority="stat")
    await asked(client, world, ct, specialty="radiology")
    response = await client.get("/api/v1/worklist", headers=world.auth("cardio"))
    assert response.status == 200
    items = await response.json()
    assert [i["id"] for i in items] == [stat["id"], routine["id"]]
    assert set(items[0]) >= {
        "id",
        "status",
        "priority",
        "due_at",
        "overdue",
        "specialty",
        "study_uid",
        "clinic",
        "question",
        "claimed_by",
    }
    assert items[0]["clinic"] == "clinic-a"
    assert items[0]["claimed_by"] is None
    assert items[0]["overdue"] is False
    only_stat = await client.get("/api/v1/worklist?priority=stat", headers=world.auth("cardio"))
    assert [i["id"] for i in await only_stat.json()] == [stat["id"]]
    assert (await client.get("/api/v1/worklist", headers=world.auth("gp-a"))).status == 403
    bad = await client.get("/api/v1/worklist?status=lost", headers=world.auth("cardio"))
    assert bad.status == 422


async def test_claim_conflict_release_and_next(client: Client, world: World) -> None:
    ecg = await stored_study(client, world)
    first = await asked(client, world, ecg, specialty="cardiology", priority="stat")
    second = await asked(client, world, ecg, specialty="cardiology")
    claim = await client.post(
        f"/api/v1/reading-requests/{first['id']}/claim", headers=world.auth("cardio")
    )
    assert claim.status == 200, await claim.text()
    body = await claim.json()
    assert set(body) == {"id", "status", "claimed_by", "lease_expires_at"}
    assert (body["status"], body["claimed_by"]) == ("claimed", "cardio")
    lease = _at(body["lease_expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < lease <= timedelta(minutes=15)
    # a radiologist cannot see it; the same reader claiming again keeps it
    other = await client.post(
        f"/api/v1/reading-requests/{first['id']}/claim", headers=world.auth("radio")
    )
    assert other.status == 404
    again = await client.post(
        f"/api/v1/reading-requests/{first['id']}/claim", headers=world.auth("cardio")
    )
    assert again.status == 200
    nxt = await client.post("/api/v1/reading-requests/next", headers=world.auth("cardio"))
    assert nxt.status == 200
    assert (await nxt.json())["id"] == second["id"]
    empty = await client.post("/api/v1/reading-requests/next", headers=world.auth("cardio"))
    assert empty.status == 204
    released = await client.post(
        f"/api/v1/reading-requests/{second['id']}/release", headers=world.auth("cardio")
    )
    assert released.status == 200
    assert await released.json() == {"id": second["id"], "status": "waiting"}
    twice = await client.post(
        f"/api/v1/reading-requests/{second['id']}/release", headers=world.auth("cardio")
    )
    assert twice.status == 409
    actions = [a for a, _, _ in await audit_actions(client.app, "reading.")]
    assert actions.count("reading.claim") == 3
    assert actions.count("reading.release") == 1


async def test_someone_else_s_claim_is_409_until_its_lease_lapses(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology")
    claim_url = f"/api/v1/reading-requests/{request['id']}/claim"
    assert (await client.post(claim_url, headers=world.auth("cardio"))).status == 200
    token = await second_cardiologist(client, world)
    refused = await client.post(claim_url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert "claimed by cardio" in error["message"]
    await _expire_lease(client, request["id"])
    listed = await client.get("/api/v1/worklist", headers=world.auth("cardio"))
    assert (await listed.json())[0]["status"] == "waiting"
    taken = await client.post(claim_url, headers={"Authorization": f"Bearer {token}"})
    assert taken.status == 200
    assert (await taken.json())["claimed_by"] == "cardio2"
    lost = await client.put(
        f"/api/v1/reading-requests/{request['id']}/report",
        json={"findings": "late"},
        headers=world.auth("cardio"),
    )
    assert lost.status == 409


async def test_drafts_belong_to_the_holder_and_renew_the_lease(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology")
    url = f"/api/v1/reading-requests/{request['id']}/report"
    draft = {
        "findings": "Sinus rhythm.",
        "impression": "Normal ECG.",
        "measurements": {"qrs_ms": 99},
    }
    unclaimed = await client.put(url, json=draft, headers=world.auth("cardio"))
    assert unclaimed.status == 409
    await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    saved = await client.put(url, json=draft, headers=world.auth("cardio"))
    assert saved.status == 200, await saved.text()
    body = await saved.json()
    assert body["status"] == "draft"
    assert body["measurements"] == {"qrs_ms": 99}
    got = await client.get(url, headers=world.auth("cardio"))
    assert (await got.json())["findings"] == "Sinus rhythm."
    assert (await client.put(url, json=draft, headers=world.auth("radio"))).status == 404


async def test_the_sla_watch_escalates_once_and_lapses_claims(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", priority="stat")
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ReadingRequest)
            .where(ReadingRequest.id == request["id"])
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    await _expire_lease(client, request["id"])
    on_duty = await client.put("/api/v1/duty", json={"on_duty": True}, headers=world.auth("cardio"))
    assert on_duty.status == 200
    bus = client.app[keys.EVENT_BUS]
    async with bus.subscribe(
        "specialty:cardiology", f"user:{world.users['admin']}", f"user:{world.users['cardio']}"
    ) as events:
        overdue, lapsed = await watch_once(client.app)
        assert overdue == [request["id"]]
        assert lapsed == [request["id"]]
        assert await watch_once(client.app) == ([], [])
        seen = [await anext(events) for _ in range(4)]
    kinds = sorted((d.channel, d.event["type"]) for d in seen)
    assert kinds == sorted(
        [
            ("specialty:cardiology", "reading.overdue"),
            ("specialty:cardiology", "reading.released"),
            (f"user:{world.users['admin']}", "reading.overdue"),
            (f"user:{world.users['cardio']}", "reading.overdue"),  # on duty
        ]
    )
    items = await (await client.get("/api/v1/worklist", headers=world.auth("cardio"))).json()
    assert items[0]["overdue"] is True
    assert items[0]["status"] == "waiting"
    actions = [a for a, _, _ in await audit_actions(client.app, "reading.")]
    assert actions.count("reading.overdue") == 1
    assert actions.count("reading.lapse") == 1


async def test_the_clinic_cancels_and_the_study_closes_to_the_specialty(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology")
    url = f"/dicom-web/studies/{study}/series"
    assert (await client.get(url, headers=world.auth("cardio"))).status == 200
    cancel = f"/api/v1/reading-requests/{request['id']}/cancel"
    assert (await client.post(cancel, headers=world.auth("gp-b"))).status == 404
    assert (await client.post(cancel, headers=world.auth("cardio"))).status == 403
    done = await client.post(cancel, headers=world.auth("gp-a"))
    assert done.status == 200
    assert await done.json() == {"id": request["id"], "status": "cancelled"}
    assert (await client.post(cancel, headers=world.auth("gp-a"))).status == 409
    assert (await client.get(url, headers=world.auth("cardio"))).status == 404
    claim = f"/api/v1/reading-requests/{request['id']}/claim"
    assert (await client.post(claim, headers=world.auth("cardio"))).status == 409
    assert await (await client.get("/api/v1/worklist", headers=world.auth("cardio"))).json() == []
    assert ("reading.cancel", "gp-a", "success") in await audit_actions(client.app, "reading.")


async def test_the_study_page_cancels_an_open_request(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology")
    csrf = await sign_in(client, "gp-a")
    page = await (await client.get(f"/studies/{study}")).text()
    action = f"/studies/{study}/reading-requests/{request['id']}/cancel"
    assert f'action="{action}"' in page
    assert (await post_form(client, action, None))[0] == 403
    status, _, location = await post_form(client, action, csrf)
    assert status == 303
    assert location == f"/studies/{study}?cancelled={request['id']}#readings"
    page = await (await client.get(f"/studies/{study}?cancelled={request['id']}")).text()
    assert "The reading request was cancelled" in page
    assert f'action="{action}"' not in page
