"""Browser upload of HL7 aECG files in a real browser: converted, stored, or refused in words."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.dicom_tools.aecg_documents import document, sample, twelve_leads
from tests.e2e.conftest import Browser

pytestmark = pytest.mark.e2e


async def test_gp_uploads_an_aecg_for_a_patient(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    await page.goto(f"{browser.server.url}/upload")
    await expect(page.get_by_text("HL7 aECG ECGs (.xml")).to_be_visible()
    patient = page.get_by_label("Patient", exact=True)
    option = patient.locator("option", has_text="NAKAMURA, Aiko · RC-0003")
    nakamura = await option.get_attribute("value")
    assert nakamura
    await patient.select_option(nakamura)
    await page.locator("#upload-files").set_input_files(
        [
            {"name": "resting.xml", "mimeType": "text/xml", "buffer": document(twelve_leads())},
            {
                "name": "minimum.xml",
                "mimeType": "application/xml",
                "buffer": sample("fda-aecg-minimum.xml"),
            },
        ]
    )
    files = page.get_by_role("list", name="Files")
    resting = files.get_by_role("listitem").filter(has_text="resting.xml")
    await expect(resting.locator(".upload-outcome")).to_have_text("stored")
    await expect(resting).to_contain_text("Converted from HL7 aECG.")
    minimum = files.get_by_role("listitem").filter(has_text="minimum.xml")
    await expect(minimum.locator(".upload-outcome")).to_have_text("rejected")
    await expect(minimum).to_contain_text("26 ms")
    await expect(page.get_by_role("region", name="Check the patient")).to_be_hidden()
    await browser.screenshot("gp-upload-aecg")
