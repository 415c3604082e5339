"""Consented recording of a browser call: the GP ticks the patient's consent and agrees, the
specialist agrees, the server's recorder joins (everyone sees "Recording"), the call goes on;
after the end the file plays: PyAV opens it and finds audio and video of about the time
recorded."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import av
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import DemoServer, publish_screenshot
from tests.e2e.people import two_people
from tests.e2e.test_call import WAIT_MS, _accepted_consult, _frames_grow

pytestmark = pytest.mark.e2e

RECORD_SECONDS = 4.0
TOLERANCE_SECONDS = 1.5
"""The file lasts from the recorder's start (between the second consent and everyone seeing
"Recording") to the end (between the End click and both pages seeing it): its duration is
within those bounds, widened by this for the first and last packets on a busy machine."""


async def test_a_consented_call_is_recorded_and_plays(
    chromium: Path, demo_server: DemoServer
) -> None:
    url = demo_server.url
    async with two_people(chromium, demo_server) as (gp, specialist):
        await gp.sign_in("gp.river")
        await specialist.sign_in("dr.heart")
        consult_id = await _accepted_consult(gp, specialist)
        host, page = specialist.page, gp.page
        await host.goto(f"{url}/consults/{consult_id}")
        await host.get_by_role("button", name="Join", exact=True).click()
        await page.goto(f"{url}/consults/{consult_id}")
        await page.get_by_role("button", name="Join", exact=True).click()
        await host.get_by_role("button", name="Let Dr Gita River in").click()
        await _frames_grow(page)

        # Nothing is recorded on one consent.
        give = page.get_by_role("button", name="I agree to record this call")
        await expect(give).to_be_disabled()  # the patient's consent first
        await page.get_by_label("The patient agrees to this call being recorded").check()
        await give.click()
        panel = page.locator("[data-call-recording-init]")
        await expect(panel).to_contain_text("You agreed. The recording starts when the other")
        await expect(host.locator("[data-call-recording]")).to_be_hidden()
        recordings = demo_server.data_dir / "recordings"
        assert not recordings.exists() or not any(recordings.iterdir())

        consented = time.monotonic()
        await host.get_by_role("button", name="I agree to record this call").click()
        for who in (page, host):
            await expect(who.locator("[data-call-recording]")).to_be_visible(timeout=WAIT_MS)
            await expect(who.locator("[data-call-people]")).to_contain_text(
                "Recorder (recording the call)"
            )
        started = time.monotonic()
        await expect(panel).to_contain_text("This call is being recorded", timeout=WAIT_MS)
        await expect(page.locator(".call-tile")).to_have_count(1)  # the recorder has no tile
        publish_screenshot(await gp.screenshot("call-recording"), "call-recording.png")
        await _frames_grow(host)
        await asyncio.sleep(max(0.0, RECORD_SECONDS - (time.monotonic() - started)))

        await host.get_by_role("button", name="End consult").click()
        await host.locator("[data-call-confirm]").get_by_role("button", name="End consult").click()
        clicked_end = time.monotonic()
        await expect(page.locator("[data-call-status]")).to_contain_text(
            "The consult has ended.", timeout=WAIT_MS
        )
        seen_end = time.monotonic()
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            got = await page.request.get(f"{url}/api/v1/consults/{consult_id}/recording")
            if got.status == 200 or time.monotonic() > deadline:
                break
            assert got.status == 409, await got.text()
            await asyncio.sleep(0.5)
        assert got.status == 200, await got.text()
        assert got.headers["content-type"] == "video/webm"
        body = await got.body()
    with av.open(io.BytesIO(body)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert "audio" in kinds, kinds
        assert "video" in kinds, kinds
        assert container.duration is not None
        duration = container.duration / 1_000_000
        frames = sum(1 for _ in container.decode(video=0))
    shortest, longest = clicked_end - started, seen_end - consented
    assert shortest - TOLERANCE_SECONDS <= duration <= longest + TOLERANCE_SECONDS, (
        shortest,
        duration,
        longest,
    )
    assert frames > 10
    assert re.match(r"^\x1aE\xdf\xa3", body[:4].decode("latin-1"))  # EBML: a WebM file
