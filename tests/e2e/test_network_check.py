"""The pre-call network check in Chromium: fake camera and microphone, the server's echo peer."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Browser, publish_screenshot

pytestmark = pytest.mark.e2e


async def test_the_check_page_reports_camera_microphone_and_network(browser: Browser) -> None:
    await browser.sign_in("gp.river")
    page = browser.page
    await page.goto(f"{browser.server.url}/consults")
    await page.get_by_role("link", name="Check your camera and connection").click()
    await page.wait_for_url(f"{browser.server.url}/consults/check")
    start = page.get_by_role("button", name="Start check")
    await expect(page.locator("[data-consult-check-init]")).to_be_attached()
    await expect(start).to_be_enabled()
    await start.click()
    verdict = page.locator("[data-check-verdict]")
    await expect(verdict).to_have_attribute(
        "data-level", re.compile("^(good|fair|bad)$"), timeout=60_000
    )
    await expect(page.get_by_role("button", name="Check again")).to_be_enabled()
    camera = page.locator('[data-check="camera"]')
    await expect(camera).to_contain_text("Works")
    await expect(camera).to_contain_text("your picture came back")
    await expect(page.locator('[data-check="microphone"]')).to_contain_text(
        "Works: sound picked up"
    )
    await expect(page.locator('[data-check="rtt"]')).to_have_text(re.compile(r"^[0-9]+ ms$"))
    await expect(page.locator('[data-check="loss"]')).to_have_text(re.compile(r"^[0-9.]+ %$"))
    throughput = await page.locator('[data-check="throughput"]').text_content()
    assert throughput is not None
    found = re.match(r"^([0-9]+) kbit/s", throughput)
    assert found is not None, throughput
    assert int(found.group(1)) > 0, throughput
    # Loopback carries video easily; a loaded machine may still only manage audio.
    level = await verdict.get_attribute("data-level")
    assert level in ("good", "fair"), await verdict.text_content()
    publish_screenshot(await browser.screenshot("consult-check"), "consult-check.png")
