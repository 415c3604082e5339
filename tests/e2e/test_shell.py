"""The web shell in a real browser: each demo role signs in, sees home, navigates, signs out."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Browser, publish_screenshot

pytestmark = pytest.mark.e2e


async def test_login_page_and_wrong_password(browser: Browser) -> None:
    page = browser.page
    await page.goto(f"{browser.server.url}/login")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("Username")).to_be_focused()
    publish_screenshot(await browser.screenshot("login", full_page=False), "login.png")

    await page.get_by_label("Username").fill("gp.river")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await expect(page.get_by_label("Username")).to_have_value("gp.river")
    await browser.screenshot("login-wrong-password", full_page=False)


async def test_gp_registers_a_patient_and_finds_it(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    await expect(page.get_by_role("heading", name="Good to see you, Dr Gita River")).to_be_visible()
    recent = page.get_by_role("region", name="Recently registered")
    await expect(recent.get_by_role("link", name="OKAFOR, Grace", exact=True)).to_be_visible()
    await expect(page.get_by_text("Moreau")).to_have_count(0)  # Hilltop's patient
    publish_screenshot(await browser.screenshot("gp-home", full_page=False), "gp-home.png")

    await page.get_by_role("link", name="Register a patient").first.click()
    await expect(page.get_by_role("heading", name="Register a patient")).to_be_visible()
    await page.get_by_label("Family name").fill("Achterberg")
    await page.get_by_label("Date of birth").fill("1961-07-04")
    await page.get_by_role("button", name="Register patient").click()
    # Server-side validation: the summary is focused and the typed values come back.
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Sex: Choose one of the options.")
    await expect(summary).to_contain_text("Identifier: Enter the identifier.")
    await expect(page.get_by_label("Family name")).to_have_value("Achterberg")
    await browser.screenshot("gp-register-errors")

    identifier = f"RC-E2E-{secrets.token_hex(3).upper()}"
    await page.get_by_label("Given name").fill("Wilhelmina")
    await page.get_by_label("Sex").select_option("F")
    await page.get_by_label("Identifier").fill(identifier)
    await page.get_by_role("button", name="Register patient").click()
    await expect(page.get_by_role("status").filter(has_text="Patient registered.")).to_be_visible()
    heading = page.get_by_role("heading", name="ACHTERBERG, Wilhelmina", exact=True)
    await expect(heading).to_be_visible()
    details = page.get_by_role("region", name="Details")
    await expect(details.get_by_text("4 Jul 1961", exact=True)).to_be_visible()
    await expect(details.get_by_text("Female", exact=True)).to_be_visible()
    await browser.screenshot("gp-patient")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    await page.get_by_role("searchbox", name="Name or identifier").fill("achter")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_text("1 patient matching “achter”")).to_be_visible()
    await page.get_by_role("link", name="ACHTERBERG, Wilhelmina", exact=True).click()
    await expect(page.get_by_text(identifier).first).to_be_visible()

    # Narrow phone: the table becomes labelled stacks and nothing scrolls sideways.
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(f"{browser.server.url}/patients")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    await browser.screenshot("gp-patients-360px")
    await page.set_viewport_size({"width": 1200, "height": 760})
    await browser.sign_out()


async def test_specialist_home(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("dr.heart")
    await expect(page.get_by_role("heading", name="Your specialties")).to_be_visible()
    await expect(page.get_by_text("Cardiology", exact=True)).to_be_visible()
    worklist = page.get_by_role("region", name="Worklist")
    await expect(worklist).to_contain_text(re.compile(r"\d+ waiting"))  # the demo's requests
    await expect(worklist).to_contain_text("Claim one, read it in the viewer")
    # A specialist has no patient register of their own.
    await expect(page.get_by_role("link", name="Patients")).to_have_count(0)
    await page.goto(f"{browser.server.url}/patients")
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    await page.get_by_role("link", name="Back to your workspace").click()
    await browser.screenshot("specialist-home")
    await browser.sign_out()


async def test_kiosk_home_is_large_type(browser: Browser) -> None:
    page = browser.page
    await page.set_viewport_size({"width": 1080, "height": 1200})
    await browser.sign_in("kiosk.harbour")
    await page.wait_for_url(f"{browser.server.url}/kiosk")
    for language in ("中文", "English"):
        button = await page.get_by_role("button", name=language).bounding_box()
        assert button is not None
        assert button["height"] >= 56
    size = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 20
    assert await page.get_by_role("button", name="Sign out").count() == 0  # no way out
    assert await page.get_by_role("navigation", name="Main").count() == 0
    await browser.screenshot("kiosk-home", full_page=False)
    await page.goto(f"{browser.server.url}/patients")
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    await browser.sign_out()


async def test_admin_home_and_pages(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("admin")
    await expect(page.get_by_role("heading", name="Network administration")).to_be_visible()
    tiles = page.get_by_role("list", name="Network at a glance")
    await expect(tiles.get_by_role("link", name="4 Organisations")).to_be_visible()
    await browser.screenshot("admin-home", full_page=False)
    nav = page.get_by_role("navigation", name="Main")
    await nav.get_by_role("link", name="Organisations").click()
    await expect(page.get_by_role("rowheader", name="Riverside Clinic")).to_be_visible()
    await nav.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("cell", name="Dr Hana Heart")).to_be_visible()
    await browser.screenshot("admin-users")
    await nav.get_by_role("link", name="Devices").click()
    await expect(page.get_by_role("heading", name="Harbour kiosk")).to_be_visible()

    await page.get_by_label("Device name").fill("kiosk.e2e")
    await page.get_by_label("Display name").fill("E2E kiosk")
    await page.get_by_label("Location").select_option(label="Harbour Office Corner (corner)")
    await page.get_by_role("button", name="Enrol device").click()
    await expect(page.get_by_role("heading", name="Device enrolled")).to_be_visible()
    token = await page.locator("#device-token").inner_text()
    assert token.startswith("dst_")
    await browser.screenshot("admin-device-token")
    await page.get_by_role("link", name="Done").click()
    await expect(page.get_by_role("heading", name="E2E kiosk")).to_be_visible()
    await expect(page.get_by_text(token)).to_have_count(0)
    await browser.screenshot("admin-devices")
    await browser.sign_out()


async def test_idle_sign_out(browser: Browser) -> None:
    page = browser.page
    await page.clock.install()
    await browser.sign_in("dr.heart")
    warning = page.locator("#idle-warning")
    await expect(warning).to_be_hidden()
    await page.clock.fast_forward("14:01")
    await expect(warning).to_be_visible()
    await browser.screenshot("idle-warning", full_page=False)
    await expect(warning.get_by_role("button", name="Stay signed in")).to_be_visible()
    # Any input (here: the mouse moving towards the button) counts as activity.
    await page.mouse.move(600, 700)
    await page.mouse.move(640, 720)
    await expect(warning).to_be_hidden()
    await page.clock.fast_forward("14:01")
    await expect(warning).to_be_visible()
    await page.clock.fast_forward("01:00")
    await page.wait_for_url(f"{browser.server.url}/login?reason=idle")
    await expect(page.get_by_role("status")).to_contain_text("signed out because nothing happened")
    # The server session is gone too, not only the page.
    response = await page.request.get(f"{browser.server.url}/api/v1/me")
    assert response.status == 401


async def test_fetch_helper_sends_the_csrf_token(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    script = """async ([useHelper, identifier]) => {
        const { apiFetch } = await import("/static/core/fetch.mjs");
        const send = useHelper ? apiFetch : window.fetch.bind(window);
        const response = await send("/api/v1/patients", {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({
                name: "Fetch^Helper", birth_date: "1990-01-01", sex: "U", identifier,
            }),
        });
        return response.status;
    }"""
    identifier = f"RC-FETCH-{secrets.token_hex(3).upper()}"
    assert await page.evaluate(script, [False, identifier]) == 403
    assert await page.evaluate(script, [True, identifier]) == 201
