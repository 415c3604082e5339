"""The call page in Chromium: two doctors join, the host admits, both decode each other's video;
chat; the specialist's browser goes offline and back and the call heals by itself; end.

Fake media devices (CHROMIUM_FLAGS) give each page a moving test pattern and a beep, so
`framesDecoded` (from getStats, on each remote tile as data-frames-decoded) grows only while
media really flows between the two pages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import DemoServer, publish_screenshot
from tests.e2e.people import Person, two_people

pytestmark = pytest.mark.e2e

FRAMES = "el => Number(el.dataset.framesDecoded || 0)"
WAIT_MS = 30_000
"""How long a step may take before the test fails (a hang guard, not a timing)."""


@pytest.fixture
async def people(chromium: Path, demo_server: DemoServer) -> AsyncIterator[tuple[Person, Person]]:
    async with two_people(chromium, demo_server, widths=(1024, 1280)) as both:
        yield both


async def _csrf(page: Page) -> str:
    return await page.locator('meta[name="csrf-token"]').get_attribute("content") or ""


async def _accepted_consult(gp: Person, specialist: Person, study_uids: Sequence[str] = ()) -> int:
    """A consult of the GP's clinic asked of dr.heart by name (with these studies attached)
    and accepted; its id."""
    url = gp.server.url
    patients = await (await gp.page.request.get(f"{url}/api/v1/patients?q=Okafor")).json()
    patient_id = patients[0]["id"]
    await specialist.page.goto(f"{url}/consults")
    made = await gp.page.request.post(
        f"{url}/api/v1/consults",
        data={
            "patient_id": patient_id,
            "specialist": "dr.heart",
            "reason": "Palpitations",
            "study_uids": list(study_uids),
        },
        headers={"X-CSRF-Token": await _csrf(gp.page)},
    )
    assert made.status == 201, await made.text()
    consult_id: int = (await made.json())["id"]
    accepted = await specialist.page.request.post(
        f"{url}/api/v1/consults/{consult_id}/accept",
        headers={"X-CSRF-Token": await _csrf(specialist.page)},
    )
    assert accepted.status == 200, await accepted.text()
    return consult_id


async def _frames_grow(page: Page) -> None:
    """The remote tile of this page decodes frames, and more a moment later."""
    tile = page.locator(".call-tile").first
    await expect(tile).to_have_attribute(
        "data-frames-decoded", re.compile("^[1-9][0-9]*$"), timeout=WAIT_MS
    )
    before = await tile.evaluate(FRAMES)
    await page.wait_for_function(
        f"() => Number(document.querySelector('.call-tile').dataset.framesDecoded) > {before}",
        timeout=WAIT_MS,
    )


async def test_two_doctors_call_chat_heal_and_end(people: tuple[Person, Person]) -> None:
    gp, specialist = people
    url = gp.server.url
    await gp.sign_in("gp.river")
    await specialist.sign_in("dr.heart")
    consult_id = await _accepted_consult(gp, specialist)

    # The specialist (the host) opens the call page: pre-join, then one button.
    host = specialist.page
    await host.goto(f"{url}/consults/{consult_id}")
    call = host.locator("[data-consult-call-init]")
    await expect(call).to_be_attached()
    await expect(host.get_by_label("Camera", exact=True)).to_be_enabled()
    await expect(host.get_by_label("Microphone", exact=True)).to_be_enabled()
    join = host.get_by_role("button", name="Join", exact=True)
    await expect(join).to_be_enabled()
    await join.click()
    await expect(host.locator("[data-call-status]")).to_have_text(
        "You are in the call. Waiting for the others to join…"
    )

    # The GP joins and waits in the lobby until the host lets them in.
    page = gp.page
    await page.goto(f"{url}/consults/{consult_id}")
    await page.get_by_role("button", name="Join", exact=True).click()
    await expect(page.locator("[data-call-lobby]")).to_be_visible()
    await expect(page.locator("[data-call-lobby]")).to_contain_text("You are in the waiting room")
    publish_screenshot(await gp.screenshot("call-lobby"), "call-lobby.png")
    admit = host.get_by_role("button", name=re.compile("^Let .* in$"))
    await expect(admit).to_be_visible()
    await admit.click()

    # Both decode each other's video.
    await expect(page.locator("[data-call-status]")).to_have_text(
        re.compile("^In the call with Dr Hana Heart")
    )
    await expect(host.locator("[data-call-status]")).to_have_text(re.compile("^In the call with"))
    await _frames_grow(page)
    await _frames_grow(host)
    await expect(host.locator("[data-call-people]")).to_contain_text("(you, host)")
    await expect(page.locator("[data-call-quality]")).to_have_text(
        re.compile("^Connection: (good|fair|poor)"), timeout=WAIT_MS
    )
    await expect(page.locator("[data-call-timer]")).not_to_have_text("00:00", timeout=WAIT_MS)

    # Chat reaches the other side and is kept in the consult record.
    await page.get_by_role("textbox", name="Message").fill(
        "The patient feels dizzy when standing up."
    )
    await page.get_by_role("button", name="Send").click()
    await expect(host.locator("[data-call-messages]")).to_contain_text(
        "The patient feels dizzy when standing up."
    )
    record = await (await page.request.get(f"{url}/api/v1/consults/{consult_id}")).json()
    assert record["status"] == "live"
    assert any("dizzy" in note["text"] for note in record["notes"]), record["notes"]
    publish_screenshot(await specialist.screenshot("call-live"), "call-live.png")

    # The specialist's network goes away and comes back: nobody clicks anything.
    await specialist.context.set_offline(True)
    await expect(call).to_have_attribute(
        "data-signal", re.compile("retrying|connecting"), timeout=WAIT_MS
    )
    await specialist.context.set_offline(False)
    await expect(call).to_have_attribute("data-signal", "open", timeout=WAIT_MS)
    await expect(host.locator("[data-call-status]")).to_have_text(
        re.compile("^In the call with"), timeout=WAIT_MS
    )
    await _frames_grow(page)
    await _frames_grow(host)
    await host.get_by_role("textbox", name="Message").fill("I can hear you again.")
    await host.get_by_role("button", name="Send").click()
    await expect(page.locator("[data-call-messages]")).to_contain_text("I can hear you again.")

    # A reload joins the same call again by itself (no new admission).
    await page.reload()
    await expect(page.locator("[data-call-status]")).to_have_text(
        re.compile("^In the call with"), timeout=WAIT_MS
    )
    await _frames_grow(page)

    # Mute and camera toggle say so.
    mute = page.get_by_role("button", name="Mute")
    await mute.click()
    await expect(page.get_by_role("button", name="Unmute")).to_have_attribute(
        "aria-pressed", "true"
    )

    # Screen share: the screen is sent in place of the camera, the call goes on, and the
    # camera comes back after. (Headless Chromium's fake screen is a test pattern like its
    # fake camera, so what the other side sees cannot tell them apart: the sent track can.)
    preview = (
        "() => document.querySelector('[data-call-preview]').srcObject.getVideoTracks()[0].label"
    )
    camera = await page.evaluate(preview)
    await page.get_by_role("button", name="Share screen").click()
    await expect(page.get_by_role("button", name="Stop sharing")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert (await page.evaluate(preview)).startswith("screen"), await page.evaluate(preview)
    await _frames_grow(host)
    await page.get_by_role("button", name="Stop sharing").click()
    await expect(page.get_by_role("button", name="Share screen")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert await page.evaluate(preview) == camera
    await _frames_grow(host)

    # The specialist writes a referral into the record during the call.
    notes = host.locator("[data-call-notes-init]")
    await notes.get_by_label("Kind").select_option("referral_up")
    await notes.get_by_label("Text").fill("Cardiology clinic within two weeks; Holter first.")
    await notes.get_by_role("button", name="Add to the record").click()
    await expect(notes.locator("[data-notes-added]")).to_contain_text("Holter first.")

    # The host ends the consult for everyone.
    await host.get_by_role("button", name="End consult").click()
    await host.locator("[data-call-confirm]").get_by_role("button", name="End consult").click()
    await expect(host.locator("[data-call-status]")).to_contain_text("The consult has ended.")
    await expect(page.locator("[data-call-status]")).to_contain_text(
        "The consult has ended.", timeout=WAIT_MS
    )
    await page.reload()
    await expect(page.get_by_role("heading", name="The consult record")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("The patient feels dizzy when standing up.")
    outcome = page.get_by_role("region", name="Advice, prescriptions and referrals")
    await expect(outcome).to_contain_text("Referral up, to the hospital")
    await expect(outcome).to_contain_text("Cardiology clinic within two weeks; Holter first.")
    await expect(page.get_by_role("region", name="Messages in the call")).to_contain_text("dizzy")
