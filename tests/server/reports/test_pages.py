"""Report pages: the clinic's list, one report, acknowledging, addenda, verifying a PDF."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from aiohttp import FormData

from tests.forms import csrf_meta, post_form, sign_in
from tests.server.reading.requests import asked, stored_study
from tests.support import PASSWORD, Client, World, audit_actions

DRAFT = {
    "findings": "Sinus rhythm. <script>alert(1)</script>",
    "impression": "Normal ECG & <b>no</b> infarct",
    "measurements": {"heart_rate_bpm": 61.1, "qtc_ms": 402.5, "rhythm": "sinus rhythm"},
}


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def _signed(client: Client, world: World) -> dict[str, Any]:
    study = await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", priority="stat")
    base = f"/api/v1/reading-requests/{request['id']}"
    assert (await client.post(f"{base}/claim", headers=world.auth("cardio"))).status == 200
    saved = await client.put(f"{base}/report", json=DRAFT, headers=world.auth("cardio"))
    assert saved.status == 200, await saved.text()
    signed = await client.post(
        f"{base}/report/sign", json={"password": PASSWORD}, headers=world.auth("cardio")
    )
    assert signed.status == 201, await signed.text()
    body: dict[str, Any] = await signed.json()
    return body


async def test_the_clinic_lists_opens_and_acknowledges_a_report(
    client: Client, world: World
) -> None:
    signed = await _signed(client, world)
    report_id = signed["report_id"]
    csrf = await sign_in(client, "gp-a")
    html = await (await client.get("/reports")).text()
    assert f'<tr data-report-id="{report_id}">' in html
    assert 'data-module="reports-live"' in html
    assert "New" in _text(html)
    html = await (await client.get(f"/reports/{report_id}")).text()
    text = _text(html)
    assert "Sinus rhythm. <script>alert(1)</script>" in text  # shown as text ...
    assert "<script>alert" not in html  # ... never as markup
    assert "Normal ECG & <b>no</b> infarct" in text
    assert "Heart rate 61 bpm" in text
    assert "QTc 402 ms" in text
    assert "Rhythm sinus rhythm" in text
    assert "1 instance" in text
    assert f'href="/api/v1/reports/{report_id}.pdf"' in html
    assert f'href="/api/v1/reports/{report_id}/fhir"' in html
    assert "Write an addendum" not in text  # a GP does not amend
    status, _, location = await post_form(client, f"/reports/{report_id}/acknowledge", csrf)
    assert (status, location) == (303, f"/reports/{report_id}?acknowledged=1")
    text = _text(await (await client.get(location)).text())
    assert "Receipt acknowledged." in text
    assert "Acknowledged by gp-a" in text
    assert "Acknowledged by gp-a" in _text(await (await client.get("/reports")).text())
    assert any(
        a[0].startswith("report.") and a[1] == "gp-a" for a in await audit_actions(client.app)
    )


async def test_another_clinic_cannot_open_it_and_the_reader_may_amend(
    client: Client, world: World
) -> None:
    signed = await _signed(client, world)
    await sign_in(client, "gp-b")
    assert (await client.get(f"/reports/{signed['report_id']}")).status == 404
    assert (
        f'data-report-id="{signed["report_id"]}"' not in await (await client.get("/reports")).text()
    )
    client.session.cookie_jar.clear()
    await sign_in(client, "cardio")
    html = await (await client.get(f"/reports/{signed['report_id']}")).text()
    assert 'data-module="addendum"' in html
    assert "Acknowledge receipt" not in html


async def test_verify_a_pdf_by_upload(client: Client, world: World) -> None:
    signed = await _signed(client, world)
    await sign_in(client, "gp-a")
    pdf = await client.get(f"/api/v1/reports/{signed['report_id']}.pdf")
    assert pdf.status == 200
    data = await pdf.read()
    page = await (await client.get("/reports/verify")).text()
    csrf = csrf_meta(page)

    async def upload(content: bytes) -> tuple[int, str]:
        form = FormData()
        form.add_field("csrf_token", csrf)
        form.add_field("pdf", content, filename="report.pdf", content_type="application/pdf")
        response = await client.post("/reports/verify", data=form)
        return response.status, _text(await response.text())

    status, text = await upload(data)
    assert status == 200
    assert "The signature is valid" in text
    assert "1 instance" in text
    assert "Nothing in the file has changed since it was signed." in text
    changed = bytearray(data)
    where = changed.find(b"/Producer")
    changed[where + 1] ^= 0x20  # one byte inside the signed range
    status, text = await upload(bytes(changed))
    assert status == 200
    assert "The signature is NOT valid" in text
    assert "Problems found" in text
    status, text = await upload(b"")
    assert status == 422
    assert "The chosen file is empty." in text
