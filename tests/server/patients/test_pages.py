"""GP patient pages: search, register through the form, details, scoping and escaping."""

from __future__ import annotations

import html as htmllib
from datetime import UTC, date, datetime

import pytest

from server.patients.display import age_on, patient_view
from server.patients.models import Patient
from tests.forms import post_form, sign_in
from tests.support import Client, World, audit_actions

GOOD = {
    "family": "Okafor",
    "given": "Grace",
    "birth_date": "1956-03-14",
    "sex": "F",
    "identifier": "RC-0099",
}


async def test_list_and_search(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    html = await (await client.get("/patients")).text()
    assert "ABLE, Alice" in html
    assert "ABLE, Arthur" in html
    assert "1 Jan 1970" in html
    assert "Female" in html
    assert "Bella" not in html
    html = await (await client.get("/patients", params={"q": "arth"})).text()
    assert "ABLE, Arthur" in html
    assert "Alice" not in html
    assert "1 patient matching" in html
    html = await (await client.get("/patients", params={"q": "A-1"})).text()
    assert "ABLE, Alice" in html
    assert "Arthur" not in html
    html = await (await client.get("/patients", params={"q": "nobody"})).text()
    assert "No patient matches" in html


@pytest.mark.parametrize("username", ["kiosk", "cardio", "admin"])
async def test_only_gps_open_patient_pages(client: Client, world: World, username: str) -> None:
    await sign_in(client, username)
    for path in ("/patients", "/patients/new", f"/patients/{world.patients['alice']}"):
        response = await client.get(path)
        assert response.status == 403, path
        assert "Not allowed" in await response.text()


async def test_register_through_the_form(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    form = await client.get("/patients/new")
    assert 'name="family"' in await form.text()
    status, _, location = await post_form(client, "/patients/new", csrf, GOOD)
    assert status == 303
    assert location.startswith("/patients/")
    assert location.endswith("?registered=1")
    html = await (await client.get(location)).text()
    assert "Patient registered." in html
    assert "<h1>OKAFOR, Grace</h1>" in html
    assert "RC-0099" in html
    assert "<dd>14 Mar 1956</dd>" in html
    assert "<dd>Female</dd>" in html
    # Stored in DICOM PN form and found by the API like any other patient.
    found = await client.get("/api/v1/patients", params={"q": "RC-0099"})
    assert [p["name"] for p in await found.json()] == ["Okafor^Grace"]
    assert ("patient.create", "gp-a", "success") in await audit_actions(
        client.app, "patient.create"
    )
    # Another clinic's GP cannot see it.
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-b")
    assert (await client.get(location.split("?")[0])).status == 404


async def test_bad_input_re_renders_with_errors_and_values(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    typed = {
        "family": "Nakamura",
        "given": "Ai^ko",
        "birth_date": "2999-01-01",
        "sex": "",
        "identifier": "bad\\id",
    }
    status, html, _ = await post_form(client, "/patients/new", csrf, typed)
    assert status == 422
    assert "There is a problem" in html
    assert "Names may not contain ^." in html
    assert "Birth date must be in the past" in html
    assert "Choose one of the options." in html
    assert "Use 1 to 64 characters" in html
    for name in ("family", "given", "birth_date", "identifier"):
        assert f'value="{htmllib.escape(typed[name])}"' in html, name
    assert html.count('aria-invalid="true"') == 4
    assert await audit_actions(client.app, "patient.create") == []


async def test_missing_family_name(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    status, html, _ = await post_form(client, "/patients/new", csrf, {**GOOD, "family": " "})
    assert status == 422
    assert "Enter the family name." in html
    assert 'value="Grace"' in html


async def test_duplicate_identifier_is_explained(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    status, html, _ = await post_form(client, "/patients/new", csrf, {**GOOD, "identifier": "A-1"})
    assert status == 409
    assert "already registered in this clinic" in html
    assert 'value="Okafor"' in html


async def test_form_post_without_csrf_is_refused(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    status, html, _ = await post_form(client, "/patients/new", None, GOOD)
    assert status == 403
    assert "CSRF" in html
    status, _, _ = await post_form(client, "/patients/new", "wrong-token", GOOD)
    assert status == 403
    found = await client.get("/api/v1/patients", params={"q": "RC-0099"})
    assert await found.json() == []


async def test_other_clinics_patient_is_not_found(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    response = await client.get(f"/patients/{world.patients['bella']}")
    assert response.status == 404
    html = await response.text()
    assert "Not found" in html
    assert "Brown" not in html
    assert "BROWN" not in html
    assert (await client.get("/patients/999999")).status == 404
    outcomes = [o for a, _, o in await audit_actions(client.app, "patient.read")]
    assert outcomes == ["denied", "failure"]


async def test_names_are_escaped(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    evil = "<script>alert(1)</script>"
    status, _, location = await post_form(
        client, "/patients/new", csrf, {**GOOD, "family": evil, "given": "X", "identifier": "E-1"}
    )
    assert status == 303
    for path in (location, "/patients?q=script", "/"):
        html = await (await client.get(path)).text()
        assert evil not in html, path
        assert evil.upper() not in html, path
        # The family name in capitals (person_name), escaped after the filter.
        assert "&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt;, X" in html, path
    html = await (await client.get(location)).text()
    assert "<dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>" in html  # the family name field
    # The search box echoes the query escaped too.
    html = await (await client.get("/patients", params={"q": '"><img src=x>'})).text()
    assert '"><img src=x>' not in html


def test_age_and_name_parts() -> None:
    assert age_on(date(1956, 3, 14), date(2026, 3, 13)) == 69
    assert age_on(date(1956, 3, 14), date(2026, 3, 14)) == 70
    patient = Patient(
        id=7,
        org_id=1,
        name="Doe^Jane^Middle",
        birth_date=date(2000, 2, 29),
        sex="O",
        identifier="X",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    view = patient_view(patient, today=date(2026, 2, 28))
    assert (view.family, view.given, view.display_name) == ("Doe", "Jane", "Doe, Jane")
    assert (view.age, view.sex) == (25, "Other")
    patient.name = "Solo"
    assert patient_view(patient).display_name == "Solo"
