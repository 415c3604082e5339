"""Remote reading in Chromium: a GP asks, the worklist updates live, claim, draft, sign.

Two people at once: the GP and the cardiologist each have their own browser context (their own
cookies) in one Chromium, on the shared demo server.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from playwright.async_api import expect
from pydicom.uid import generate_uid

from tests.dicom_tools.part10 import bundled
from tests.e2e.conftest import (
    DEMO_PASSWORD,
    DemoServer,
    publish_screenshot,
)
from tests.e2e.people import Person, two_people
from tests.server.dicomweb.helpers import multipart

pytestmark = pytest.mark.e2e


@pytest.fixture
async def people(chromium: Path, demo_server: DemoServer) -> AsyncIterator[tuple[Person, Person]]:
    """The GP and the cardiologist, each in a fresh context; fails on console errors."""
    async with two_people(chromium, demo_server) as both:
        yield both


def _ecg(patient: str) -> tuple[bytes, str]:
    """pydicom's 12-lead ECG as a new study of a new patient: (bytes, Study Instance UID)."""
    ds = pydicom.dcmread(bundled("waveform_ecg.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID = patient, "READ-E2E-1"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), ds.StudyInstanceUID


async def _stow(person: Person, instance: bytes) -> None:
    body, content_type = multipart([instance])
    csrf = await person.page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = await person.page.request.post(
        f"{person.server.url}/dicom-web/studies",
        data=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": csrf or ""},
    )
    assert response.ok, await response.text()


async def test_ask_read_live_claim_draft_and_sign(people: tuple[Person, Person]) -> None:
    gp, cardiologist = people
    url = gp.server.url
    await gp.sign_in("gp.river")
    await cardiologist.sign_in("dr.heart")

    # The cardiologist's worklist is open and live before the GP asks.
    worklist = cardiologist.page
    await worklist.goto(f"{url}/worklist")
    await expect(worklist.locator("[data-worklist-connection]")).to_have_text(re.compile("^Live"))
    await worklist.evaluate("() => { document.body.dataset.sameDocument = 'yes'; }")

    # The GP asks for a STAT reading from the study page.
    instance, study_uid = _ecg("Reading^Rita")
    await _stow(gp, instance)
    await gp.page.goto(f"{url}/studies/{study_uid}")
    form = gp.page.locator("form.reading-ask")
    await expect(form.get_by_label("Specialty")).to_have_value("cardiology")
    await form.get_by_role("radio", name=re.compile("STAT")).check()
    await form.get_by_label("Clinical question").fill("Chest pain for an hour, rule out STEMI")
    await form.get_by_role("button", name="Ask for a reading").click()
    await expect(gp.page.get_by_role("status")).to_contain_text(
        re.compile(r"Asked cardiology to read this study \(STAT, due [0-9]{2}:[0-9]{2}\)")
    )
    await expect(gp.page.locator("#readings")).to_contain_text("Waiting for a reader")

    # The new row appears on the open worklist by itself (no navigation happened).
    row = worklist.locator("tr.reading-row", has_text="READING, Rita")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("STAT")
    await expect(row).to_contain_text("Chest pain for an hour")
    await expect(row).to_contain_text(re.compile(r"Due in (29|30) min"))
    assert await worklist.evaluate("() => document.body.dataset.sameDocument") == "yes"
    await expect(worklist.locator("[data-worklist-live]")).to_contain_text("New STAT cardiology")
    publish_screenshot(await cardiologist.screenshot("reading-worklist"), "reading-worklist.png")

    # Claim from the list: the row says so, and Open leads to the viewer with the report panel.
    await row.get_by_role("button", name=re.compile("^Claim")).click()
    await expect(row.locator("[data-status]")).to_have_text("Claimed by you")
    await expect(row.get_by_role("button", name=re.compile("^Claim"))).to_have_count(0)
    await row.get_by_role("link", name=re.compile("^Open")).click()
    await worklist.wait_for_url(
        re.compile(rf"/studies/{re.escape(study_uid)}/view\?request=[0-9]+$")
    )
    panel = worklist.locator(".reading-panel[data-report-editor-init]")
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text("Chest pain for an hour")

    # The ECG template is pre-filled from the measurements confirmed beside the ECG.
    await expect(panel).to_have_attribute("data-editor-prefilled", "")
    rate = worklist.locator("input.ecg-reader-value[name=heart_rate_bpm]")
    await expect(panel.get_by_label("Rate (bpm)")).to_have_value(await rate.input_value())
    assert await panel.get_by_label("Rate (bpm)").input_value() != ""
    await rate.fill("64")
    await expect(panel.get_by_label("Rate (bpm)")).to_have_value("64")

    await panel.get_by_label("Findings").fill("Sinus rhythm. No ST elevation.")
    await panel.get_by_label("Impression").fill("Normal ECG; no sign of an acute infarct.")
    await expect(panel.locator("[data-editor-save]")).to_have_text(
        re.compile(r"^Saved [0-9]{2}:[0-9]{2}$")
    )
    request_id = worklist.url.rsplit("=", 1)[1]
    draft = await worklist.request.get(f"{url}/api/v1/reading-requests/{request_id}/report")
    body = await draft.json()
    assert body["findings"] == "Sinus rhythm. No ST elevation."
    assert body["measurements"]["heart_rate_bpm"] == 64
    assert "qtc_ms" in body["measurements"]
    assert "rr_ms" in body["measurements"]
    publish_screenshot(await cardiologist.screenshot("reading-authoring"), "reading-authoring.png")

    # The GP's reports page is open when the report is signed.
    await gp.page.goto(f"{url}/reports")
    await expect(gp.page.locator("[data-reports-live]")).to_be_attached()
    await gp.page.wait_for_function("() => document.querySelector('[data-reports-synced]')")

    # Sign: a wrong password keeps the dialog open; the right one signs.
    await panel.get_by_role("button", name="Sign…").click()
    dialog = worklist.get_by_role("dialog")
    await dialog.get_by_label("Your password").fill("not-the-password")
    await dialog.get_by_role("button", name="Sign and send").click()
    await expect(dialog.locator("[data-editor-sign-error]")).to_have_text(
        "That password is not right."
    )
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Your password").fill(DEMO_PASSWORD)
    await dialog.get_by_role("button", name="Sign and send").click()
    signed = panel.locator("[data-editor-signed]")
    await expect(signed).to_be_visible()
    await expect(signed).to_contain_text("Signed.")
    report_href = await signed.get_by_role("link", name="Open the report").get_attribute("href")
    assert report_href is not None
    assert re.fullmatch(r"/reports/[0-9]+", report_href)

    # The GP sees it arrive without a reload, then opens it.
    await expect(gp.page.locator("[data-reports-toast]")).to_contain_text("New report from")
    new_row = gp.page.locator(f'tr[data-report-id="{report_href.rsplit("/", 1)[1]}"]')
    await expect(new_row).to_contain_text("READING, Rita")
    await expect(new_row).to_contain_text("New")
    await new_row.get_by_role("link").click()
    await gp.page.wait_for_url(f"{url}{report_href}")
    await expect(gp.page.locator("main")).to_contain_text(
        "Normal ECG; no sign of an acute infarct."
    )
    await expect(gp.page.locator("main")).to_contain_text("Sinus rhythm. No ST elevation.")
    publish_screenshot(await gp.screenshot("reading-report"), "reading-report.png")
    await gp.page.get_by_role("button", name="Acknowledge receipt").click()
    await expect(gp.page.locator("main")).to_contain_text("Acknowledged by")

    # The cardiologist corrects the signed report with an addendum, signed in its turn.
    await worklist.goto(f"{url}{report_href}")
    await worklist.get_by_text("Write an addendum").click()
    await worklist.get_by_label("Addendum", exact=True).fill("QTc recalculated: 410 ms.")
    await worklist.get_by_label("Your password").fill("wrong-password")
    await worklist.get_by_role("button", name="Sign the addendum").click()
    await expect(worklist.locator("[data-addendum-error]")).to_have_text(
        "That password is not right."
    )
    await worklist.get_by_label("Your password").fill(DEMO_PASSWORD)
    await worklist.get_by_role("button", name="Sign the addendum").click()
    original = f"{url}{report_href}"
    await worklist.wait_for_url(
        lambda at: (
            at != original and re.fullmatch(rf"{re.escape(url)}/reports/[0-9]+", at) is not None
        )
    )
    await expect(worklist.locator("main")).to_contain_text("QTc recalculated: 410 ms.")
    await expect(worklist.locator("main")).to_contain_text("This addendum corrects")
