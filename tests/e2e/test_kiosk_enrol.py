"""Enrolling a kiosk in Chromium: the admin's devices page creates a one-time code, a fresh
browser types it on the kiosk's on-screen keypad and lands on the kiosk's first screen;
revoking the device credential sends the kiosk back to the enrolment screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, Browser

pytestmark = pytest.mark.e2e


@pytest.fixture
async def kiosk_page(browser: Browser) -> AsyncIterator[Page]:
    """A second, fresh Chromium (no cookies) at 1080x1920 portrait, failing on console errors."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = await chromium.new_context(
                viewport={"width": 1080, "height": 1920}, locale="en-GB", timezone_id="UTC"
            )
            context.set_default_timeout(10_000)
            page = await context.new_page()
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text
                    else None
                ),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            await chromium.close()
    assert errors == [], "kiosk browser console errors"


async def _create_code(browser: Browser) -> str:
    page = browser.page
    await page.goto(f"{browser.server.url}/admin/devices")
    await page.get_by_role("button", name="Create an enrolment code for kiosk.harbour").click()
    await expect(page.get_by_role("heading", name="One-time code")).to_be_visible()
    code = (await page.locator("#enrolment-code").inner_text()).strip()
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", code)
    link = (await page.locator("#enrolment-link").inner_text()).strip()
    assert link == f"{browser.server.url}/kiosk?enrol={code}"
    qr = page.get_by_role("img", name="QR code of the enrolment link")
    await expect(qr).to_be_visible()
    box = await qr.locator("svg").bounding_box()
    assert box is not None
    assert box["width"] >= 150
    await browser.screenshot("kiosk-enrolment-code")
    return code


async def test_typed_on_the_keypad_then_revoked(browser: Browser, kiosk_page: Page) -> None:
    await browser.sign_in("admin")
    code = await _create_code(browser)

    kiosk = kiosk_page
    url = browser.server.url
    await kiosk.goto(f"{url}/kiosk")
    await expect(kiosk.get_by_role("heading", name="Set up this kiosk")).to_be_visible()
    keypad = kiosk.get_by_role("group", name="Number keypad")
    await expect(keypad).to_be_visible()
    field = kiosk.get_by_label("Enrolment code")
    assert await field.get_attribute("inputmode") == "none"  # the keypad is the keyboard
    for name in ("1", "0", "Clear", "Delete the last digit"):
        box = await keypad.get_by_role("button", name=name, exact=True).bounding_box()
        assert box is not None
        assert box["width"] >= 56
        assert box["height"] >= 56
    # A slip and its correction, then the code, all by touch.
    await keypad.get_by_role("button", name="7", exact=True).click()
    await keypad.get_by_role("button", name="Delete the last digit").click()
    for digit in code.replace("-", ""):
        await keypad.get_by_role("button", name=digit, exact=True).click()
    await expect(field).to_have_value(code)
    await expect(kiosk.get_by_text("12 / 12")).to_be_visible()
    await kiosk.screenshot(path=_artifact("kiosk-enrol"))
    await kiosk.get_by_role("button", name="Set up this kiosk").click()
    await kiosk.wait_for_url(f"{url}/kiosk")
    await expect(kiosk.get_by_role("heading", name="Welcome to the health point")).to_be_visible()
    assert code not in kiosk.url
    cookies = {c["name"]: c for c in await kiosk.context.cookies()}
    assert cookies["doorstep_kiosk"]["httpOnly"] is True
    assert cookies["doorstep_kiosk"]["sameSite"] == "Strict"
    assert await kiosk.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

    # The admin revokes the kiosk's credential: the kiosk stops by itself (it asks every few
    # seconds whether its credential still works) and shows the enrolment screen.
    page = browser.page
    await page.goto(f"{url}/admin/devices")
    device = page.get_by_role("article").filter(has_text="kiosk.harbour")
    row = device.get_by_role("row").filter(has_text="kiosk cookie").first  # newest first
    await row.get_by_role("button", name=re.compile(r"^Revoke")).click()
    await expect(page.get_by_text(re.compile(r"Token \d+ revoked"))).to_be_visible()
    await expect(kiosk.get_by_role("heading", name="Set up this kiosk")).to_be_visible(
        timeout=30_000
    )
    await kiosk.reload()
    await expect(kiosk.get_by_role("heading", name="Set up this kiosk")).to_be_visible()
    await browser.sign_out()


async def test_the_link_enrols_and_leaves_no_code_behind(
    browser: Browser, kiosk_page: Page
) -> None:
    await browser.sign_in("admin")
    code = await _create_code(browser)
    kiosk = kiosk_page
    url = browser.server.url
    await kiosk.goto(f"{url}/kiosk")
    await expect(kiosk.get_by_role("heading", name="Set up this kiosk")).to_be_visible()
    before = await kiosk.evaluate("history.length")
    await kiosk.goto(f"{url}/kiosk?enrol={code}")
    await expect(kiosk.get_by_role("heading", name="Welcome to the health point")).to_be_visible()
    assert kiosk.url == f"{url}/kiosk"
    # The redirect took the code's entry's place: one entry more, and back is the first screen.
    assert await kiosk.evaluate("history.length") == before + 1
    await kiosk.go_back()
    assert kiosk.url == f"{url}/kiosk"
    # The same link again, in another fresh browser profile's place: used already.
    await kiosk.context.clear_cookies()
    await kiosk.goto(f"{url}/kiosk?enrol={code}")
    await expect(kiosk.get_by_role("alert")).to_have_text(
        "This code has been used already. Ask the administrator for a new one."
    )
    assert code not in kiosk.url
    await browser.sign_out()


def _artifact(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
