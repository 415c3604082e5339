"""The administrators' side of reading: turnaround, reassigning, metrics; no patient data."""

from __future__ import annotations

from tests.forms import post_form, sign_in
from tests.server.reading.people import second_cardiologist
from tests.server.reading.requests import asked, stored_study
from tests.support import Client, World, audit_actions


async def test_admins_see_requests_without_patient_data(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    await asked(client, world, study, specialty="cardiology", question="Mrs Able's chest pain")
    items = await (await client.get("/api/v1/reading-requests", headers=world.auth("admin"))).json()
    assert len(items) == 1
    assert items[0]["question"] == ""
    assert items[0]["patient_name"] == ""
    assert items[0]["clinic"] == "clinic-a"
    await sign_in(client, "admin")
    html = await (await client.get("/admin/reading")).text()
    assert "Able" not in html
    assert "chest pain" not in html
    assert "clinic-a" in html


async def test_an_admin_reassigns_and_the_page_shows_turnaround(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", priority="stat")
    await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    await second_cardiologist(client, world)
    csrf = await sign_in(client, "admin")
    status, body, location = await post_form(
        client, f"/admin/reading/{request['id']}/reassign", csrf, {"username": "cardio2"}
    )
    assert status == 303, body
    assert location == f"/admin/reading?done={request['id']}"
    current = await (
        await client.get(f"/api/v1/reading-requests/{request['id']}", headers=world.auth("cardio"))
    ).json()
    assert current["claimed_by"] == "cardio2"
    assert ("reading.reassign", "admin", "success") in await audit_actions(client.app, "reading.")
    status, body, _ = await post_form(
        client, f"/admin/reading/{request['id']}/reassign", csrf, {"username": "radio"}
    )
    assert status == 422
    assert "not an active cardiology reader" in body
    status, _, _ = await post_form(
        client, f"/admin/reading/{request['id']}/reassign", None, {"username": "cardio2"}
    )
    assert status == 403
    html = await (await client.get("/admin/reading")).text()
    assert "Turnaround, last 30 days" in html
    assert "Median to claim" in html


async def test_metrics_report_open_overdue_and_turnaround(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", priority="urgent")
    await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    await asked(client, world, study, specialty="cardiology", priority="urgent")
    text = await (await client.get("/metrics", headers=world.auth("admin"))).text()
    assert 'doorstep_reading_requests_open{priority="urgent",specialty="cardiology"} 2.0' in text
    assert 'doorstep_reading_requests_overdue{priority="urgent",specialty="cardiology"} 0.0' in text
    assert (
        'doorstep_reading_turnaround_minutes{priority="urgent",specialty="cardiology",stage="claim"}'
        in text
    )
    assert 'stage="sign"' not in text


async def test_an_admin_changes_the_text_new_reports_start_from(
    client: Client, world: World
) -> None:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", question="Palpitations")
    csrf = await sign_in(client, "admin")
    page = await client.get("/admin/report-templates")
    assert page.status == 200
    assert "Rhythm:" in await page.text()
    text = "Asked: {{ question }} ({{ specialty }}).\nRhythm: "
    status, body, location = await post_form(
        client, "/admin/report-templates/ecg", csrf, {"findings": text, "impression": "Normal ECG."}
    )
    assert status == 303, body
    assert location == "/admin/report-templates?saved=ecg"
    for hostile in ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "{% if %}"):
        status, body, _ = await post_form(
            client, "/admin/report-templates/ecg", csrf, {"findings": hostile, "impression": ""}
        )
        assert status == 422, hostile
        assert "cannot be used" in body
    assert (await post_form(client, "/admin/report-templates/ecg", None, {"findings": ""}))[
        0
    ] == 403
    assert ("report_template.update", "admin", "success") in await audit_actions(
        client.app, "report_template."
    )
    await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    client.session.cookie_jar.clear()
    await sign_in(client, "cardio")
    panel = await (await client.get(f"/studies/{study}/view?request={request['id']}")).text()
    assert "Asked: Palpitations (cardiology).\nRhythm: " in panel
    assert "Normal ECG." in panel
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    assert (await client.get("/admin/report-templates")).status == 403
