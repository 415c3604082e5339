"""A guest (the patient at home) in Chromium: the GP invites, the guest opens the one-time
link without an account, waits in the lobby, the specialist lets them in, and all three
decode each other's video; the guest sees no records and cannot end the consult."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import DemoServer, publish_screenshot
from tests.e2e.people import people
from tests.e2e.test_call import WAIT_MS, _accepted_consult, _frames_grow

pytestmark = pytest.mark.e2e


async def test_a_guest_joins_through_the_lobby(chromium: Path, demo_server: DemoServer) -> None:
    url = demo_server.url
    async with people(chromium, demo_server, widths=(1024, 1280, 800)) as (gp, specialist, guest):
        await gp.sign_in("gp.river")
        await specialist.sign_in("dr.heart")
        consult_id = await _accepted_consult(gp, specialist)
        host = specialist.page
        await host.goto(f"{url}/consults/{consult_id}")
        await host.get_by_role("button", name="Join", exact=True).click()
        await gp.page.goto(f"{url}/consults/{consult_id}")
        await gp.page.get_by_role("button", name="Join", exact=True).click()
        await host.get_by_role("button", name="Let Dr Gita River in").click()
        await _frames_grow(gp.page)

        # The GP makes the link in the call page.
        invite = gp.page.locator("[data-guest-invite-init]")
        await invite.get_by_label("Who is it?").fill("Grace at home")
        await invite.get_by_role("button", name="Make a link").click()
        await expect(invite.locator("[data-guest-link]")).to_have_text(
            re.compile(f"^{re.escape(url)}/consults/guest/")
        )
        link = (await invite.locator("[data-guest-link]").text_content() or "").strip()

        page = guest.page
        await page.goto(link)
        await page.wait_for_url(f"{url}/consults/{consult_id}")
        await expect(
            page.get_by_role("heading", name="Video call with Dr Hana Heart")
        ).to_be_visible()
        main = page.locator("main")
        await expect(main).not_to_contain_text("OKAFOR")
        await expect(page.locator("a[href^='/patients'], a[href^='/studies']")).to_have_count(0)
        await expect(page.get_by_role("button", name="End consult")).to_have_count(0)
        await page.get_by_role("button", name="Join", exact=True).click()
        await expect(page.locator("[data-call-lobby]")).to_be_visible()
        await host.get_by_role("button", name="Let Grace at home in").click()
        await expect(page.locator("[data-call-status]")).to_have_text(
            re.compile("^In the call with"), timeout=WAIT_MS
        )
        tiles = page.locator(".call-tile")
        await expect(tiles).to_have_count(2, timeout=WAIT_MS)
        for tile in (0, 1):
            await expect(tiles.nth(tile)).to_have_attribute(
                "data-frames-decoded", re.compile("^[1-9][0-9]*$"), timeout=WAIT_MS
            )
        await expect(host.locator(".call-tile")).to_have_count(2, timeout=WAIT_MS)
        await expect(host.locator("[data-call-people]")).to_contain_text("Grace at home (guest)")
        await _frames_grow(host)
        publish_screenshot(await guest.screenshot("call-guest"), "call-guest.png")

        # Chat reaches the guest; the link cannot be used a second time elsewhere.
        await gp.page.get_by_role("textbox", name="Message").fill("Grace, can you hear us?")
        await gp.page.get_by_role("button", name="Send").click()
        await expect(page.locator("[data-call-messages]")).to_contain_text(
            "Grace, can you hear us?"
        )
        again = await specialist.page.request.get(link, max_redirects=0)
        assert again.status == 410
        await expect(host.locator("[data-call-messages]")).to_contain_text(
            "Grace, can you hear us?"
        )
        await page.get_by_role("textbox", name="Message").fill("Yes, I can hear you both.")
        await page.get_by_role("button", name="Send").click()
        await expect(gp.page.locator("[data-call-messages]")).to_contain_text("I can hear you both")

        # The consult's record names the guest among the participants and keeps their chat.
        await host.get_by_role("button", name="End consult").click()
        await host.locator("[data-call-confirm]").get_by_role("button", name="End consult").click()
        await expect(page.locator("[data-call-status]")).to_contain_text(
            "The consult has ended.", timeout=WAIT_MS
        )
        await gp.page.reload()
        record = gp.page.locator("main")
        await expect(record).to_contain_text("Grace at home (guest)")
        await expect(record).to_contain_text("Yes, I can hear you both.")
