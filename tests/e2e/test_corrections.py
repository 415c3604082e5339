"""Corrections in a real browser: a GP corrects a patient; an administrator finds it in the log."""

from __future__ import annotations

import csv
import io
import secrets

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import DEMO_PASSWORD, Browser, publish_screenshot

pytestmark = pytest.mark.e2e


async def test_a_gp_corrects_a_patient_and_the_admin_finds_it_in_the_log(
    browser: Browser,
) -> None:
    page = browser.page
    url = browser.server.url
    identifier = f"RC-FIX-{secrets.token_hex(3).upper()}"
    await browser.sign_in("gp.river")

    # Search in any order and case.
    await page.goto(f"{url}/patients")
    await page.get_by_role("searchbox", name="Name or identifier").fill("grace OKAFOR")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_text("1 patient matching “grace OKAFOR”")).to_be_visible()
    await expect(page.get_by_role("link", name="OKAFOR, Grace", exact=True)).to_be_visible()

    # Register a patient with a typo, then correct it.
    await page.goto(f"{url}/patients/new")
    await page.get_by_label("Family name").fill("Mensa")
    await page.get_by_label("Given name").fill("Kofi")
    await page.get_by_label("Date of birth").fill("1966-05-17")
    await page.get_by_label("Sex").select_option("M")
    await page.get_by_label("Identifier").fill(identifier)
    await page.get_by_role("button", name="Register patient").click()
    await expect(page.get_by_role("heading", name="MENSA, Kofi", exact=True)).to_be_visible()

    await page.get_by_role("link", name="Correct details").click()
    await expect(page.get_by_role("heading", name="Correct the patient")).to_be_visible()
    await expect(page.get_by_label("Family name")).to_have_value("Mensa")
    await page.get_by_label("Family name").fill("Mensah")
    await page.get_by_label("Date of birth").fill("1966-05-18")
    await browser.screenshot("gp-patient-correct")
    await page.get_by_role("button", name="Save corrections").click()
    await expect(page.get_by_role("status").filter(has_text="Details corrected.")).to_be_visible()
    await expect(page.get_by_role("heading", name="MENSAH, Kofi", exact=True)).to_be_visible()
    details = page.get_by_role("region", name="Details")
    await expect(details.get_by_text("18 May 1966", exact=True)).to_be_visible()
    await page.goto(f"{url}/patients?q={identifier.lower()[:9]}")
    await expect(page.get_by_role("link", name="MENSAH, Kofi", exact=True)).to_be_visible()
    await browser.sign_out()

    # The administrator filters the log by that GP and the action.
    await browser.sign_in("admin")
    nav = page.get_by_role("navigation", name="Main")
    await nav.get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", name="Audit log", exact=True)).to_be_visible()
    filters = page.get_by_role("search", name="Audit log")
    await filters.get_by_label("User").fill("gp.river")
    await filters.get_by_label("Action").fill("patient.update")
    await filters.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("heading", name="1 event matching the filters")).to_be_visible()
    events = page.locator("#audit-events")
    await expect(events).to_contain_text("patient.update")
    await expect(events).to_contain_text("Mensah")
    await expect(events).to_contain_text("1966-05-17")
    await expect(filters.get_by_label("User")).to_have_value("gp.river")
    publish_screenshot(await browser.screenshot("admin-audit-log"), "admin-audit-log.png")

    # Who read that patient: the object link filters by it.
    await events.get_by_role("link", name="patient").click()
    await expect(filters.get_by_label("Object identifier")).not_to_have_value("")
    await expect(page.locator("#audit-events")).to_contain_text("patient.read")
    await expect(page.locator("#audit-events")).to_contain_text("patient.create")

    # The same selection as CSV.
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Download CSV").click()
    download = await waiting.value
    assert download.suggested_filename.startswith("doorstep-audit-")
    assert download.suggested_filename.endswith(".csv")
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert {row["action"] for row in rows} >= {"patient.create", "patient.update", "patient.read"}
    assert {row["organisation"] for row in rows} == {"Riverside Clinic"}
    await browser.sign_out()


async def test_a_forgotten_password_is_reset_and_replaced(browser: Browser) -> None:
    page = browser.page
    url = browser.server.url
    await browser.sign_in("admin")
    await page.goto(f"{url}/admin/users")
    await page.get_by_role("link", name="gp.hill").click()
    await expect(page.get_by_role("heading", name="Dr Hugo Hill")).to_be_visible()
    await browser.screenshot("admin-user")
    await page.get_by_role("button", name="Reset password of gp.hill").click()
    await expect(page.get_by_role("heading", name="Password reset")).to_be_visible()
    temporary = await page.locator("#temporary-password").inner_text()
    assert len(temporary) >= 12
    await browser.screenshot("admin-password-reset")
    await page.get_by_role("link", name="Done").click()
    await expect(page.get_by_text("Temporary password", exact=True)).to_be_visible()
    await browser.sign_out()

    # The temporary password signs in, but only to choose a password of one's own.
    await page.goto(f"{url}/login")
    await page.get_by_label("Username").fill("gp.hill")
    await page.get_by_label("Password").fill(temporary)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{url}/account/password")
    await expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    await page.goto(f"{url}/patients")
    await page.wait_for_url(f"{url}/account/password")
    own = "hilltop morning coffee"
    await page.get_by_label("Temporary password").fill(temporary)
    await page.get_by_label("New password", exact=True).fill(own)
    await page.get_by_label("Repeat the new password").fill(own)
    await browser.screenshot("account-password")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status").filter(has_text="Password changed.")).to_be_visible()
    await page.get_by_role("link", name="Continue").click()
    await expect(page.get_by_role("heading", name="Good to see you, Dr Hugo Hill")).to_be_visible()

    # Back to the demo password, for whoever signs in as gp.hill next.
    await page.get_by_role("link", name="Change password").click()
    await page.get_by_label("Current password").fill(own)
    await page.get_by_label("New password", exact=True).fill(DEMO_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status").filter(has_text="Password changed.")).to_be_visible()
    await browser.sign_out()
    await browser.sign_in("gp.hill")
    await browser.sign_out()
