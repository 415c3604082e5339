"""Corrections by the patient's clinic: demographics (API and page), wrongly linked studies."""

from __future__ import annotations

import html as htmllib
import json
from typing import Any

import pytest
from sqlalchemy import select, update

from server import keys
from server.archive.models import Instance, Study
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.forms import post_form, sign_in
from tests.server.dicomweb.helpers import stow
from tests.support import Client, World, audit_actions, audit_events

EVIL = '<script>alert("x")</script>'


async def _patch(client: Client, world: World, patient: int, body: Any, user: str = "gp-a") -> Any:
    return await client.patch(f"/api/v1/patients/{patient}", json=body, headers=world.auth(user))


async def _details(client: Client, action: str) -> list[dict[str, Any]]:
    return [json.loads(e.details) for e in await audit_events(client.app, action)]


# The API -------------------------------------------------------------------------------


async def test_a_gp_corrects_a_patient_through_the_api(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    response = await _patch(
        client, world, alice, {"name": "Abel^Alicia", "birth_date": "1971-02-03"}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["name"], body["birth_date"], body["sex"], body["identifier"]) == (
        "Abel^Alicia",
        "1971-02-03",
        "F",
        "A-1",
    )
    fetched = await client.get(f"/api/v1/patients/{alice}", headers=world.auth("gp-a"))
    assert (await fetched.json())["name"] == "Abel^Alicia"
    found = await client.get(
        "/api/v1/patients", params={"q": "alicia abel"}, headers=world.auth("gp-a")
    )
    assert [p["id"] for p in await found.json()] == [alice]
    events = await audit_events(client.app, "patient.update")
    assert [(e.actor, e.object_id, e.outcome, e.org_id) for e in events] == [
        ("gp-a", str(alice), "success", world.orgs["clinic-a"])
    ]
    assert json.loads(events[0].details) == {
        "before": {"name": "Able^Alice", "birth_date": "1970-01-01"},
        "after": {"name": "Abel^Alicia", "birth_date": "1971-02-03"},
    }
    # Only what changed is recorded.
    again = await _patch(client, world, alice, {"name": "Abel^Alicia", "sex": "O"})
    assert again.status == 200
    assert (await _details(client, "patient.update"))[-1] == {
        "before": {"sex": "F"},
        "after": {"sex": "O"},
    }


async def test_an_identifier_of_another_patient_is_409(client: Client, world: World) -> None:
    alice, arthur = world.patients["alice"], world.patients["arthur"]
    clash = await _patch(client, world, alice, {"identifier": "A-2", "name": "Changed^Not"})
    assert clash.status == 409
    assert (await clash.json())["error"]["code"] == "conflict"
    unchanged = await client.get(f"/api/v1/patients/{alice}", headers=world.auth("gp-a"))
    assert (await unchanged.json())["name"] == "Able^Alice"
    # Another clinic's identifier is no clash; the patient's own one neither.
    assert (await _patch(client, world, alice, {"identifier": "B-1"})).status == 200
    assert (await _patch(client, world, arthur, {"identifier": "A-2"})).status == 200
    assert [o for _, _, o in await audit_actions(client.app, "patient.update")] == [
        "success",
        "success",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "Doe\\Jane"}, "name"),
        ({"name": "^^"}, "name"),
        ({"name": "A" * 201}, "name"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": None}, "birth_date"),
        ({"sex": "X"}, "sex"),
        ({"identifier": ""}, "identifier"),
        ({"identifier": "A\nB"}, "identifier"),
        ({"org_id": 2}, "org_id"),
        ({"created_by": 1}, "created_by"),
    ],
)
async def test_bad_corrections_are_422_naming_the_field(
    client: Client, world: World, body: dict[str, Any], field: str
) -> None:
    response = await _patch(client, world, world.patients["alice"], body)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid"
    assert [d["field"] for d in error["details"]] == [field]
    assert await audit_actions(client.app, "patient.update") == []


async def test_not_json_is_refused(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    response = await client.patch(
        f"/api/v1/patients/{alice}", data="name=x", headers=world.auth("gp-a")
    )
    assert response.status == 415
    response = await client.patch(
        f"/api/v1/patients/{alice}",
        data="{",
        headers={**world.auth("gp-a"), "Content-Type": "application/json"},
    )
    assert response.status == 400


async def test_only_the_patients_clinic_corrects(client: Client, world: World) -> None:
    bella = world.patients["bella"]
    response = await _patch(client, world, bella, {"name": "Stolen^Name"})
    assert response.status == 404
    assert "Brown" not in await response.text()
    assert (await _patch(client, world, 999999, {"sex": "M"})).status == 404
    for username in ("cardio", "kiosk", "admin"):
        refused = await _patch(client, world, bella, {"sex": "M"}, user=username)
        assert refused.status == 403, username
    fetched = await client.get(f"/api/v1/patients/{bella}", headers=world.auth("gp-b"))
    assert (await fetched.json())["name"] == "Brown^Bella"
    assert await audit_actions(client.app, "patient.update") == [
        ("patient.update", "gp-a", "denied"),
        ("patient.update", "gp-a", "failure"),
    ]


async def test_the_openapi_document_describes_the_correction(client: Client, world: World) -> None:
    document = await (await client.get("/api/v1/openapi.json", headers=world.auth("gp-a"))).json()
    patch = document["paths"]["/api/v1/patients/{id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PatientPatch"
    }
    assert {"200", "404", "409", "422"} <= set(patch["responses"])
    schema = document["components"]["schemas"]["PatientPatch"]
    assert set(schema["properties"]) == {"name", "birth_date", "sex", "identifier"}
    assert "required" not in schema


# The page ------------------------------------------------------------------------------


async def test_a_gp_corrects_a_patient_on_the_page(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    csrf = await sign_in(client, "gp-a")
    detail = await (await client.get(f"/patients/{alice}")).text()
    assert f'href="/patients/{alice}/edit"' in detail
    form = await (await client.get(f"/patients/{alice}/edit")).text()
    assert 'value="Able"' in form
    assert 'value="Alice"' in form
    assert 'value="1970-01-01"' in form
    assert 'value="A-1"' in form
    assert '<option value="F" selected>' in form
    fields = {
        "family": EVIL,
        "given": "Alice",
        "birth_date": "1970-01-02",
        "sex": "F",
        "identifier": "A-1b",
    }
    status, _, location = await post_form(client, f"/patients/{alice}/edit", csrf, fields)
    assert status == 303
    assert location == f"/patients/{alice}?updated=1"
    html = await (await client.get(location)).text()
    assert "Details corrected." in html
    assert EVIL not in html
    assert f"<dd>{htmllib.escape(EVIL, quote=False)}</dd>" in html.replace("&#34;", '"')
    assert "<dd>2 Jan 1970</dd>" in html
    assert "A-1b" in html
    assert await _details(client, "patient.update") == [
        {
            "before": {"name": "Able^Alice", "birth_date": "1970-01-01", "identifier": "A-1"},
            "after": {"name": f"{EVIL}^Alice", "birth_date": "1970-01-02", "identifier": "A-1b"},
        }
    ]
    form = await (await client.get(f"/patients/{alice}/edit")).text()
    assert EVIL not in form


async def test_the_page_keeps_the_names_it_does_not_show(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    assert (await _patch(client, world, alice, {"name": "Able^Alice^Mary^Dr"})).status == 200
    csrf = await sign_in(client, "gp-a")
    fields = {"family": "Able", "given": "Alicia", "birth_date": "1970-01-01", "sex": "F"}
    status, _, _ = await post_form(
        client, f"/patients/{alice}/edit", csrf, {**fields, "identifier": "A-1"}
    )
    assert status == 303
    fetched = await client.get(f"/api/v1/patients/{alice}", headers=world.auth("gp-a"))
    assert (await fetched.json())["name"] == "Able^Alicia^Mary^Dr"


async def test_the_page_explains_what_is_wrong(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    csrf = await sign_in(client, "gp-a")
    typed = {
        "family": "",
        "given": "Al^ice",
        "birth_date": "2999-01-01",
        "sex": "Q",
        "identifier": "x\\y",
    }
    status, html, _ = await post_form(client, f"/patients/{alice}/edit", csrf, typed)
    assert status == 422
    assert "Enter the family name." in html
    assert "Names may not contain ^." in html
    assert "Birth date must be in the past" in html
    assert 'value="x\\y"' in html
    good = {"family": "Able", "given": "Alice", "birth_date": "1970-01-01", "sex": "F"}
    status, html, _ = await post_form(
        client, f"/patients/{alice}/edit", csrf, {**good, "identifier": "A-2"}
    )
    assert status == 409
    assert "already registered in this clinic" in html
    assert 'value="A-2"' in html
    status, _, _ = await post_form(client, f"/patients/{alice}/edit", None, good)
    assert status == 403
    assert await audit_actions(client.app, "patient.update") == []


async def test_the_edit_page_is_the_patients_clinics(client: Client, world: World) -> None:
    bella = world.patients["bella"]
    csrf = await sign_in(client, "gp-a")
    assert (await client.get(f"/patients/{bella}/edit")).status == 404
    good = {"family": "X", "given": "Y", "birth_date": "1970-01-01", "sex": "F", "identifier": "Z"}
    status, html, _ = await post_form(client, f"/patients/{bella}/edit", csrf, good)
    assert status == 404
    assert "Brown" not in html
    for username in ("cardio", "admin"):
        client.session.cookie_jar.clear()
        await sign_in(client, username)
        assert (await client.get(f"/patients/{bella}/edit")).status == 403
    fetched = await client.get(f"/api/v1/patients/{bella}", headers=world.auth("gp-b"))
    assert (await fetched.json())["name"] == "Brown^Bella"


# Unlinking a study ---------------------------------------------------------------------


async def _linked_study(client: Client, world: World, patient: int) -> None:
    stored = await stow(client, world, "gp-a", [part10(dataset())])
    assert stored.status == 200, await stored.text()
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(Study).where(Study.study_uid == STUDY_UID).values(linked_patient_id=patient)
        )


async def test_a_wrongly_linked_study_is_unlinked_and_stays(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    await _linked_study(client, world, alice)
    csrf = await sign_in(client, "gp-a")
    page = await (await client.get(f"/patients/{alice}")).text()
    action = f"/patients/{alice}/studies/{STUDY_UID}/unlink"
    assert f'action="{action}"' in page
    status, _, location = await post_form(client, action, csrf)
    assert status == 303
    assert location == f"/patients/{alice}?unlinked={STUDY_UID}"
    page = await (await client.get(location)).text()
    assert "is no longer linked to this patient" in page
    assert f'href="/studies/{STUDY_UID}"' not in page
    # Nothing deleted: the study and its instance are in the archive and on the study list.
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = (await session.execute(select(Study.linked_patient_id))).all()
        instances = len((await session.scalars(select(Instance.id))).all())
    assert rows == [(None,)]
    assert instances == 1
    assert STUDY_UID in await (await client.get("/studies")).text()
    assert await audit_actions(client.app, "study.patient_") == [
        ("study.patient_unlink", "gp-a", "success")
    ]
    assert await _details(client, "study.patient_unlink") == [{"patient_id": alice}]
    # Twice is not found; the undo links it again, audited.
    status, _, _ = await post_form(client, action, csrf)
    assert status == 404
    status, _, location = await post_form(
        client, f"/patients/{alice}/studies/{STUDY_UID}/link", csrf
    )
    assert status == 303
    assert f'href="/studies/{STUDY_UID}"' in await (await client.get(location)).text()
    assert await audit_actions(client.app, "study.patient_") == [
        ("study.patient_unlink", "gp-a", "success"),
        ("study.patient_unlink", "gp-a", "failure"),
        ("study.patient_link", "gp-a", "success"),
    ]


async def test_only_the_clinic_unlinks_its_patients_studies(client: Client, world: World) -> None:
    alice, arthur = world.patients["alice"], world.patients["arthur"]
    await _linked_study(client, world, alice)
    csrf = await sign_in(client, "gp-a")
    # Not this patient's study, a malformed UID, another clinic's patient.
    status, _, _ = await post_form(client, f"/patients/{arthur}/studies/{STUDY_UID}/unlink", csrf)
    assert status == 404
    assert (await client.post(f"/patients/{alice}/studies/1..2/unlink")).status in (403, 404)
    status, _, _ = await post_form(client, f"/patients/{alice}/studies/1..2/unlink", csrf)
    assert status == 404
    status, _, _ = await post_form(
        client, f"/patients/{world.patients['bella']}/studies/{STUDY_UID}/unlink", csrf
    )
    assert status == 404
    status, _, _ = await post_form(client, f"/patients/{alice}/studies/{STUDY_UID}/unlink", None)
    assert status == 403
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "gp-b")
    status, _, _ = await post_form(client, f"/patients/{alice}/studies/{STUDY_UID}/unlink", csrf)
    assert status == 404
    async with client.app[keys.SESSIONMAKER]() as session:
        assert (await session.execute(select(Study.linked_patient_id))).all() == [(alice,)]
