"""The patient's record shows the reports on the patient's studies, and where to ask for one."""

from __future__ import annotations

from tests.forms import post_form, sign_in
from tests.server.reading.requests import stored_study
from tests.server.reports.flow import claimed_with_draft
from tests.support import PASSWORD, Client, World


async def test_the_patient_page_links_the_signed_report(client: Client, world: World) -> None:
    study = await stored_study(client, world)
    alice = world.patients["alice"]
    csrf = await sign_in(client, "gp-a")
    status, body, _ = await post_form(client, f"/patients/{alice}/studies/{study}/link", csrf)
    assert status == 303, body
    html = await (await client.get(f"/patients/{alice}")).text()
    assert f'href="/studies/{study}#ask-title">Ask for a reading' in html
    _, request_id = await claimed_with_draft(client, world, study)
    signed = await client.post(
        f"/api/v1/reading-requests/{request_id}/report/sign",
        json={"password": PASSWORD},
        headers=world.auth("cardio"),
    )
    assert signed.status == 201
    report_id = (await signed.json())["report_id"]
    html = await (await client.get(f"/patients/{alice}")).text()
    assert f'href="/reports/{report_id}">Report by cardio' in html
    assert "(new)" in html
