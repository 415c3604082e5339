"""Patients API: creation, organisation scoping, search, bad input, audit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Client, World, audit_trail

VALID = {"name": "Doe^Jane", "birth_date": "1980-02-29", "sex": "F", "identifier": "A-77"}


async def test_gp_registers_a_patient_in_their_clinic(client: Client, world: World) -> None:
    response = await client.post("/api/v1/patients", json=VALID, headers=world.auth("gp-a"))
    assert response.status == 201
    body = await response.json()
    assert {k: body[k] for k in VALID} == VALID
    assert body["org_id"] == world.orgs["clinic-a"]
    fetched = await client.get(f"/api/v1/patients/{body['id']}", headers=world.auth("gp-a"))
    assert (await fetched.json())["identifier"] == "A-77"
    assert await audit_trail(client.app, "patient.create") == [("gp-a", str(body["id"]), "success")]


async def test_duplicate_identifier_in_one_clinic_is_409_but_other_clinic_may_reuse(
    client: Client, world: World
) -> None:
    assert (
        await client.post("/api/v1/patients", json=VALID, headers=world.auth("gp-a"))
    ).status == 201
    again = await client.post("/api/v1/patients", json=VALID, headers=world.auth("gp-a"))
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "conflict"
    other = await client.post("/api/v1/patients", json=VALID, headers=world.auth("gp-b"))
    assert other.status == 201


async def test_gp_cannot_see_another_clinics_patient_and_the_attempt_is_audited(
    client: Client, world: World
) -> None:
    bella = world.patients["bella"]
    response = await client.get(f"/api/v1/patients/{bella}", headers=world.auth("gp-a"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    missing = await client.get("/api/v1/patients/999999", headers=world.auth("gp-a"))
    assert missing.status == 404
    assert await audit_trail(client.app, "patient.read") == [
        ("gp-a", str(bella), "denied"),
        ("gp-a", "999999", "failure"),
    ]


async def test_search_is_scoped_and_treats_wildcards_literally(
    client: Client, world: World
) -> None:
    async def names(username: str, q: str) -> list[str]:
        response = await client.get(
            "/api/v1/patients", params={"q": q}, headers=world.auth(username)
        )
        assert response.status == 200
        return [p["name"] for p in await response.json()]

    assert await names("gp-a", "") == ["Able^Alice", "Able^Arthur"]
    assert await names("gp-a", "able^a") == ["Able^Alice", "Able^Arthur"]
    assert await names("gp-a", "A-2") == ["Able^Arthur"]
    assert await names("gp-a", "brown") == []
    assert await names("gp-b", "") == ["Brown^Bella"]
    assert await names("gp-a", "%") == []
    assert await names("gp-a", "_") == []
    paged = await client.get(
        "/api/v1/patients", params={"limit": "1", "offset": "1"}, headers=world.auth("gp-a")
    )
    assert [p["name"] for p in await paged.json()] == ["Able^Arthur"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Doe\\Jane"}, "name"),
        ({"name": "Doe^Jane\x00"}, "name"),
        ({"name": "^^^"}, "name"),
        ({"name": "A" * 201}, "name"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": "31/12/1980"}, "birth_date"),
        ({"sex": "X"}, "sex"),
        ({"identifier": "A\\B"}, "identifier"),
        ({"identifier": "A\nB"}, "identifier"),
        ({"identifier": ""}, "identifier"),
        ({"org_id": 3}, "org_id"),
    ],
)
async def test_bad_patient_input_is_422_naming_the_field(
    client: Client, world: World, change: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/v1/patients", json={**VALID, **change}, headers=world.auth("gp-a")
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid"
    assert [d["field"] for d in error["details"]] == [field]
    listing = await client.get("/api/v1/patients", headers=world.auth("gp-a"))
    assert len(await listing.json()) == 2


async def test_roles_are_enforced(client: Client, world: World) -> None:
    for username in ("cardio", "kiosk", "admin"):
        response = await client.post("/api/v1/patients", json=VALID, headers=world.auth(username))
        assert response.status == 403, username
        assert (await response.json())["error"]["code"] == "forbidden"
    assert (await client.get("/api/v1/patients", headers=world.auth("kiosk"))).status == 403
    # A specialist has no access to a patient until a reading request grants it.
    alice = world.patients["alice"]
    assert (
        await client.get(f"/api/v1/patients/{alice}", headers=world.auth("cardio"))
    ).status == 404
    # An administrator reads no patient data (break-glass aside: tests/server/accounts).
    assert await (await client.get("/api/v1/patients", headers=world.auth("admin"))).json() == []


async def test_query_parameters_are_validated(client: Client, world: World) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"q": "x" * 65},
        {"sort": "name"},
    ):
        response = await client.get("/api/v1/patients", params=params, headers=world.auth("gp-a"))
        assert response.status == 422, params
