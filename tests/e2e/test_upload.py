"""Browser upload in a real browser: a DICOM file through STOW-RS, a photo, a rejected file."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from playwright.async_api import expect

from tests.dicom_tools.part10 import bundled
from tests.e2e.conftest import Browser, publish_screenshot

pytestmark = pytest.mark.e2e


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (190, 120, 100)).save(out, "PNG")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cd/IMG0001", bundled("CT_small.dcm").read_bytes())
        archive.writestr("../../evil.dcm", b"x")
    return out.getvalue()


async def test_gp_uploads_and_finds_the_study(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    await expect(page.get_by_role("heading", name="Upload images and ECGs")).to_be_visible()
    patient = page.get_by_label("Patient", exact=True)
    option = patient.locator("option", has_text="OKAFOR, Grace · RC-0001 · born 14 Mar 1956")
    okafor = await option.get_attribute("value")
    assert okafor
    await patient.select_option(okafor)
    await page.get_by_label("Photo description").fill("Skin lesion, left forearm")

    chooser = page.locator("#upload-files")
    await chooser.set_input_files(bundled("CT_small.dcm"))
    files = page.get_by_role("list", name="Files")
    ct = files.get_by_role("listitem").filter(has_text="CT_small.dcm")
    await expect(ct.locator(".upload-outcome")).to_have_text("stored")
    await expect(page.locator("#upload-overall-text")).to_have_text("100% · 1 of 1 files")
    # CT_small names CompressedSamples^CT1, not Mrs Okafor: it waits for a person to confirm.
    check = page.get_by_role("region", name="Check the patient")
    await expect(check).to_be_visible()
    await expect(check).to_contain_text("OKAFOR, Grace")
    differences = check.get_by_role("row")
    await expect(differences.filter(has_text="Name")).to_contain_text("COMPRESSEDSAMPLES, CT1")
    await expect(differences.filter(has_text="Patient ID")).to_contain_text("RC-0001")
    await browser.screenshot("gp-upload-check-patient")
    await check.get_by_role("button", name="Link to the chosen patient").click()
    await expect(check).to_be_hidden()
    await expect(page.locator("#upload-notice")).to_have_text("Linked 1 study to the patient.")
    await chooser.set_input_files(
        [
            {"name": "lesion.png", "mimeType": "image/png", "buffer": _png()},
            {"name": "notes.dcm", "mimeType": "application/octet-stream", "buffer": b"hello"},
            {"name": "cd.zip", "mimeType": "application/zip", "buffer": _zip()},
        ]
    )
    lesion = files.get_by_role("listitem").filter(has_text="lesion.png")
    await expect(lesion.locator(".upload-outcome")).to_have_text("stored")
    await expect(lesion).to_contain_text("Stored as a DICOM image.")
    notes = files.get_by_role("listitem").filter(has_text="notes.dcm")
    await expect(notes.locator(".upload-outcome")).to_have_text("rejected")
    # Plain words first; the archive's reason code behind "Details".
    await expect(notes.locator(".upload-message")).to_contain_text("not a readable DICOM file")
    technical = notes.locator("details code")
    await expect(technical).to_be_hidden()
    await notes.get_by_text("Details").click()
    await expect(technical).to_contain_text("not_dicom")
    archive = files.get_by_role("listitem").filter(has_text="cd.zip")
    await expect(archive.locator(".upload-outcome").first).to_have_text("partly stored")
    await expect(archive).to_contain_text("1 duplicate, 1 rejected")
    await expect(archive).to_contain_text("The name in the zip points outside its folder")
    await expect(archive).to_contain_text("unsafe_name: The name points outside")
    await expect(page.locator("#upload-overall-text")).to_have_text("100% · 4 of 4 files")
    assert await page.locator("#upload-overall").get_attribute("value") == "100"
    assert await ct.locator("progress").get_attribute("value") == "100"
    await expect(page.get_by_role("status").filter(has_text="2 of 4 files stored")).to_be_visible()
    publish_screenshot(await browser.screenshot("gp-upload"), "gp-upload.png")

    await page.get_by_role("link", name="See the studies").click()
    await expect(page.get_by_role("heading", name="Studies")).to_be_visible()
    study = page.get_by_role("link", name="CompressedSamples, CT1")
    await expect(study).to_be_visible()
    # Mrs Okafor also has the demo's ECG: the photo is the study described as the lesion.
    photo_row = page.get_by_role("row").filter(has_text="Skin lesion, left forearm")
    await expect(photo_row.get_by_role("link", name="OKAFOR, Grace")).to_be_visible()
    publish_screenshot(await browser.screenshot("gp-studies"), "gp-studies.png")

    await study.click()
    heading = page.get_by_role("heading", name="COMPRESSEDSAMPLES, CT1", exact=True)
    await expect(heading).to_be_visible()
    await expect(page.get_by_text("1 in 1 series")).to_be_visible()
    await expect(page.get_by_role("cell", name="CT", exact=True)).to_be_visible()
    await browser.screenshot("gp-study-detail")

    # Narrow phone: nothing scrolls sideways on either page.
    await page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/upload", "/studies"):
        await page.goto(f"{browser.server.url}{path}")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360, path
    await page.wait_for_load_state("networkidle")
    await browser.screenshot("gp-studies-360px")
    await page.set_viewport_size({"width": 1200, "height": 760})
    await browser.sign_out()
