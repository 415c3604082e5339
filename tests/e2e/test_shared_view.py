"""Shared study viewing in a call, in Chromium: the specialist opens an attached CT together and
the GP's viewer follows frame, window and zoom (their own input inert); a reload of the GP's
page brings the shared study back; the specialist lets the GP lead and the GP's changes reach
the specialist; then an ECG together, calipers included; "Close for everyone"; the call's end.

Each page's frame reports the state its viewer shows on the Studies panel
(`data-frame-state`, the viewer's own reading of itself), and the overlays say it in words.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import FrameLocator, Page, expect

from tests.e2e.conftest import publish_screenshot
from tests.e2e.people import Person
from tests.e2e.test_call import WAIT_MS, _accepted_consult, people

pytestmark = pytest.mark.e2e

__all__ = ["people"]  # the fixture of tests/e2e/test_call.py

FRAME = "[data-shared-frame]"
FRAME_TEXT = "[data-viewer-frame-text]"
WINDOW_TEXT = "[data-viewer-window-text]"


async def _study(person: Person, patient_id: str, modality: str) -> str:
    """The UID of the demo study of this patient with this modality (QIDO-RS)."""
    url = person.server.url
    response = await person.page.request.get(
        f"{url}/dicom-web/studies?PatientID={patient_id}&ModalitiesInStudy={modality}",
        headers={"Accept": "application/dicom+json"},
    )
    assert response.status == 200, await response.text()
    found = await response.json()
    assert found, (patient_id, modality)
    uid: str = found[0]["0020000D"]["Value"][0]
    return uid


async def _in_call(gp: Person, specialist: Person, consult_id: int) -> None:
    """The specialist joins, the GP joins and is let in: both are in the call."""
    url = gp.server.url
    host, page = specialist.page, gp.page
    await host.goto(f"{url}/consults/{consult_id}")
    await host.get_by_role("button", name="Join", exact=True).click()
    await expect(host.locator("[data-call-status]")).to_have_text(
        "You are in the call. Waiting for the others to join…"
    )
    await page.goto(f"{url}/consults/{consult_id}")
    await page.get_by_role("button", name="Join", exact=True).click()
    await host.get_by_role("button", name=re.compile("^Let .* in$")).click()
    for each in (host, page):
        await expect(each.locator("[data-call-status]")).to_have_text(
            re.compile("^In the call with"), timeout=WAIT_MS
        )


async def _state(page: Page) -> dict[str, Any]:
    """What this page's framed viewer says it shows."""
    text = await page.locator("[data-shared-area]").get_attribute("data-frame-state")
    assert text
    state: dict[str, Any] = json.loads(text)
    return state


async def _same_overlay(leader: FrameLocator, follower: FrameLocator, frame: str) -> str:
    """Once the leader shows this frame, the follower comes to show it with the same window."""
    await expect(leader.locator(FRAME_TEXT)).to_have_text(frame, timeout=WAIT_MS)
    await expect(follower.locator(FRAME_TEXT)).to_have_text(frame, timeout=WAIT_MS)
    await _overlay(leader)
    window = await leader.locator(WINDOW_TEXT).text_content() or ""
    await expect(follower.locator(WINDOW_TEXT)).to_have_text(window, timeout=WAIT_MS)
    return f"{frame} {window}"


async def _drag(page: Page, frame: FrameLocator, selector: str, dx: float, dy: float) -> None:
    """A mouse drag inside a framed element, from near its middle by (dx, dy) CSS pixels."""
    await frame.locator(selector).scroll_into_view_if_needed()
    box = await frame.locator(selector).bounding_box()
    assert box
    x = box["x"] + min(box["width"] / 2, 160)
    y = box["y"] + min(box["height"] / 2, 120)
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + dx / 2, y + dy / 2, steps=4)
    await page.mouse.move(x + dx, y + dy, steps=4)
    await page.mouse.up()


async def _overlay(frame: FrameLocator) -> tuple[str, ...]:
    """The viewer's frame slider, overlay text and toggles once it has drawn what it was told."""
    await frame.locator("body").evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    )
    found = [await frame.locator("[data-viewer-slider]").input_value()]
    for part in (FRAME_TEXT, WINDOW_TEXT, "[data-viewer-zoom-text]"):
        found.append(await frame.locator(part).text_content() or "")
    for action in ("invert", "flip-h"):
        found.append(
            await frame.locator(f'[data-action="{action}"]').get_attribute("aria-pressed") or ""
        )
    return tuple(found)


async def _try_everything(page: Page, frame: FrameLocator) -> None:
    """Keys, a drag and the wheel on a viewer, as a user who is not leading would."""
    for key in ("Home", "ArrowUp", "End", "r", "i", "h", "x", "+"):
        await frame.locator("main").press(key)
    await _drag(page, frame, "[data-viewer-stage]", -120, -60)
    await page.mouse.wheel(0, 400)


async def test_open_a_study_together_lead_follow_and_hand_over(
    people: tuple[Person, Person],
) -> None:
    gp, specialist = people
    await gp.sign_in("gp.river")
    await specialist.sign_in("dr.heart")
    ct = await _study(gp, "RC-0002", "CT")
    ecg = await _study(gp, "RC-0001", "ECG")
    consult_id = await _accepted_consult(gp, specialist, study_uids=[ct, ecg])
    await _in_call(gp, specialist, consult_id)
    host, page = specialist.page, gp.page

    # The host leads by default: only they can open a study together.
    await expect(page.locator("[data-shared-who]")).to_have_text(
        "Dr Hana Heart is showing (nothing open yet). Your viewer follows theirs."
    )
    await expect(page.locator(f'[data-shared-open="{ct}"]')).to_be_disabled()
    await host.locator(f'[data-shared-open="{ct}"]').click()
    mine, theirs = host.frame_locator(FRAME), page.frame_locator(FRAME)
    for frame in (mine, theirs):
        await expect(frame.locator(FRAME_TEXT)).to_have_text(
            re.compile("^Frame 1 of [0-9]+$"), timeout=WAIT_MS
        )
    await expect(host.locator("[data-shared-who]")).to_have_text(
        "You are showing this study to everyone in the call."
    )
    await expect(page.locator("[data-shared-who]")).to_have_text(
        "Dr Hana Heart is showing. Your viewer follows theirs."
    )
    await expect(mine.locator("body")).to_have_attribute("data-following", "no")
    await expect(theirs.locator("body")).to_have_attribute("data-following", "yes")
    frames = int(await mine.locator("[data-viewer-slider]").get_attribute("max") or 0)
    assert frames > 2

    # The host moves to the last frame, drags the window and zooms: the GP's viewer follows.
    await mine.locator("[data-viewer-canvas]").focus()
    await host.keyboard.press("End")
    await _drag(host, mine, "[data-viewer-canvas]", 80, 40)
    await host.keyboard.press("+")
    said = await _same_overlay(mine, theirs, f"Frame {frames} of {frames}")
    assert re.search(" W -?[0-9.]+ L -?[0-9.]+$", said), said
    for each in (host, page):
        await expect(each.locator("[data-shared-area]")).to_have_attribute(
            "data-frame-state", re.compile(r'"fitted":false'), timeout=WAIT_MS
        )
    led = (await _state(host))["image"]
    assert led["zoom"] > 1
    followed = (await _state(page))["image"]
    assert (followed["frame"], followed["window"]) == (led["frame"], led["window"])
    assert followed["zoom"] == pytest.approx(led["zoom"], rel=0.01)

    publish_screenshot(await gp.screenshot("call-shared-view"), "call-shared-view.png")

    # The GP's own input is inert: keys, drags and the wheel change nothing, here or there.
    shown, showing = await _overlay(theirs), await _overlay(mine)
    await _try_everything(page, theirs)
    assert await _overlay(theirs) == shown
    assert await _overlay(mine) == showing
    assert (await _state(host))["image"] == led

    # The GP's page reloads: it joins again by itself and the host's view comes back into it.
    await page.reload()
    await expect(page.locator("[data-call-status]")).to_have_text(
        re.compile("^In the call with"), timeout=WAIT_MS
    )
    theirs = page.frame_locator(FRAME)
    await _same_overlay(mine, theirs, f"Frame {frames} of {frames}")
    await expect(theirs.locator("body")).to_have_attribute("data-following", "yes")

    # The host lets the GP lead; the GP's changes now reach the host.
    await host.get_by_role("button", name="Let Dr Gita River lead").click()
    await expect(page.locator("[data-shared-who]")).to_have_text(
        "You are showing this study to everyone in the call."
    )
    await expect(host.locator("[data-shared-who]")).to_have_text(
        "Dr Gita River is showing. Your viewer follows theirs."
    )
    await expect(page.get_by_role("button", name="Give the lead back")).to_be_visible()
    await expect(host.get_by_role("button", name="Take the lead back")).to_be_visible()
    await expect(theirs.locator("body")).to_have_attribute("data-following", "no")
    await expect(mine.locator("body")).to_have_attribute("data-following", "yes")
    await theirs.locator("[data-viewer-canvas]").focus()
    await page.keyboard.press("Home")
    await page.keyboard.press("ArrowDown")
    await _drag(page, theirs, "[data-viewer-canvas]", -60, 30)
    await page.keyboard.press("r")
    said = await _same_overlay(theirs, mine, f"Frame 2 of {frames}")
    assert re.search(" W -?[0-9.]+ L -?[0-9.]+$", said), said
    await expect(host.locator("[data-shared-area]")).to_have_attribute(
        "data-frame-state", re.compile(r'"rotation":1'), timeout=WAIT_MS
    )
    # Now the host's own input is the inert one.
    shown, showing = await _overlay(mine), await _overlay(theirs)
    await _try_everything(host, mine)
    assert await _overlay(mine) == shown
    assert await _overlay(theirs) == showing

    # The host takes the lead back and shows the ECG together; the caliper is shared.
    await host.get_by_role("button", name="Take the lead back").click()
    await expect(host.locator("[data-shared-who]")).to_have_text(
        "You are showing this study to everyone in the call."
    )
    await expect(page.locator("[data-shared-who]")).to_have_text(
        "Dr Hana Heart is showing. Your viewer follows theirs."
    )
    await host.locator(f'[data-shared-open="{ecg}"]').click()
    paper = ".ecg-paper-frame svg"
    for frame in (mine, theirs):
        await expect(frame.locator(paper)).to_be_attached(timeout=WAIT_MS)
    await mine.locator('[data-choice="speed"]').select_option("50")
    await expect(theirs.locator('[data-choice="speed"]')).to_have_value("50", timeout=WAIT_MS)
    await expect(theirs.locator(".ecg-viewer")).to_have_attribute(
        "data-paper", "3x4 50 10", timeout=WAIT_MS
    )
    await expect(mine.locator(".ecg-viewer")).to_have_attribute("data-paper", "3x4 50 10")
    await _drag(host, mine, paper, 90, -30)
    reading = mine.locator(".ecg-caliper-reading")
    await expect(reading).to_have_text(re.compile(r"^[0-9]+ ms · -?[0-9.]+ mV"))
    await expect(theirs.locator(".ecg-caliper-reading")).to_have_text(
        await reading.text_content() or "?", timeout=WAIT_MS
    )
    await expect(theirs.locator("[data-role=caliper] line")).to_have_count(4)
    publish_screenshot(await specialist.screenshot("call-shared-ecg"), "call-shared-ecg.png")

    # Closing closes it for everyone.
    await host.get_by_role("button", name="Close for everyone").click()
    for each in (host, page):
        await expect(each.locator("[data-shared-area]")).to_be_hidden(timeout=WAIT_MS)
    await expect(page.locator("[data-shared-who]")).to_have_text(
        "Dr Hana Heart is showing (nothing open yet). Your viewer follows theirs."
    )

    # Shown again, then the consult ends: nothing is shown together any more.
    await host.locator(f'[data-shared-open="{ct}"]').click()
    await expect(theirs.locator(FRAME_TEXT)).to_have_text(
        re.compile("^Frame 1 of [0-9]+$"), timeout=WAIT_MS
    )
    await host.get_by_role("button", name="End consult").click()
    await host.locator("[data-call-confirm]").get_by_role("button", name="End consult").click()
    for each in (host, page):
        await expect(each.locator("[data-call-status]")).to_contain_text(
            "The consult has ended.", timeout=WAIT_MS
        )
        await expect(each.locator("[data-shared-area]")).to_be_hidden()
        await expect(each.locator("[data-shared-who]")).to_have_text("The call has ended.")
