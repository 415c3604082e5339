"""Consult requests in Chromium: on duty, a GP asks from the patient page, a live alert, accept.

Two people at once, each in their own browser context (their own cookies) in one Chromium, on
the shared demo server: the cardiologist's page and the GP's status page change without a
reload (each page carries a mark that a navigation would lose).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import (
    DemoServer,
    publish_screenshot,
)
from tests.e2e.people import Person, two_people

pytestmark = pytest.mark.e2e

MARK = "() => { document.body.dataset.sameDocument = 'yes'; }"
SAME = "() => document.body.dataset.sameDocument"


@pytest.fixture
async def people(chromium: Path, demo_server: DemoServer) -> AsyncIterator[tuple[Person, Person]]:
    """The GP and the cardiologist, each in a fresh context; fails on console errors."""
    async with two_people(
        chromium, demo_server, widths=(1024, 1280)
    ) as both:  # the GP at tablet width
        yield both


async def test_on_duty_ask_alert_accept_and_the_gp_sees_it(people: tuple[Person, Person]) -> None:
    gp, cardiologist = people
    url = gp.server.url
    await cardiologist.sign_in("dr.heart")
    await gp.sign_in("gp.river")

    # The cardiologist goes on duty on their home (the demo starts them on duty: off, then on).
    home = cardiologist.page
    toggle = home.locator("#duty").get_by_role("button", name="On duty")
    in_bar = home.get_by_role("navigation", name="Main").get_by_role("button", name="On duty")
    await expect(home.locator("#duty [data-duty-toggle-init]")).to_be_attached()
    if await toggle.get_attribute("aria-pressed") == "true":
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-pressed", "false")
        await expect(home.locator("#duty")).to_contain_text("You are off duty")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(home.locator("#duty")).to_contain_text("You are on duty")
    await expect(in_bar).to_have_attribute("aria-pressed", "true")  # the top bar follows
    duty = await home.request.get(f"{url}/api/v1/duty")
    assert (await duty.json())["on_duty"] is True
    await expect(home.locator("[data-consult-alerts-init]")).to_be_attached()
    await expect(home).to_have_title("Home · Doorstep")
    await home.evaluate(MARK)

    # The GP starts a consult from the patient's page.
    page = gp.page
    await page.goto(f"{url}/patients?q=Okafor")
    await page.get_by_role("link", name=re.compile("OKAFOR, Grace")).click()
    await page.get_by_role("link", name="Start a consult").click()
    await page.wait_for_url(re.compile(r"/consults/new\?patient=[0-9]+$"))
    form = page.locator("form.consult-form")
    await expect(form.get_by_label("Specialty", exact=True)).to_have_value("general")
    await expect(form.get_by_role("radio", name=re.compile("^A specialty"))).to_be_checked()
    await expect(form.get_by_label("Specialist", exact=True)).to_contain_text(
        "Dr Hana Heart (cardiology) — on duty now"
    )
    await form.get_by_label("Specialty", exact=True).select_option("cardiology")
    await form.get_by_label("Reason for the consult").fill(
        "Palpitations and dizziness since yesterday; ECG attached."
    )
    studies = form.get_by_role("group", name=re.compile("^Studies to discuss"))
    await studies.get_by_role("checkbox").first.check()
    await expect(form.get_by_role("radio", name="Now")).to_be_checked()
    publish_screenshot(await gp.screenshot("consult-request-form"), "consult-request-form.png")
    await form.get_by_role("button", name="Ask for the consult").click()
    await page.wait_for_url(re.compile(r"/consults/[0-9]+/status$"))
    consult_id = page.url.rsplit("/", 2)[1]
    live = page.locator("[data-consult-live-init]")
    await expect(live.locator("[data-live-connection]")).to_have_text(re.compile("^Live"))
    await expect(live.locator("[data-consult-headline]")).to_have_text("Offered to Dr Hana Heart")
    await expect(live.locator("[data-countdown]")).to_have_text(
        re.compile(r"^[0-9]+:[0-9]{2} left to answer$")
    )
    await page.evaluate(MARK)

    # The cardiologist's page shows the alert and a changed tab title, without a reload.
    alert = home.locator(f'[data-consult-alert="{consult_id}"]')
    await expect(alert).to_be_visible()
    await expect(alert).to_have_attribute("role", "alert")
    await expect(alert).to_contain_text("Consult request: OKAFOR, Grace")
    await expect(alert).to_contain_text("Riverside Clinic")
    await expect(alert).to_contain_text("Palpitations and dizziness since yesterday")
    await expect(alert.locator("[data-countdown]")).to_have_text(
        re.compile(r"^[0-9]+:[0-9]{2} left to answer$")
    )
    await expect(home).to_have_title("(1) Consult request — Doorstep")
    # The toggle's click allowed sound, so the alert beeped (Web Audio, no file).
    await expect(home.locator("[data-consult-alerts]")).to_have_attribute("data-beeps", "1")
    assert await home.evaluate(SAME) == "yes"
    publish_screenshot(await cardiologist.screenshot("consult-alert"), "consult-alert.png")

    # Accept from the alert (the keyboard works as well as the mouse).
    accept = alert.get_by_role("button", name=re.compile("^Accept"))
    await accept.focus()
    await home.keyboard.press("Enter")
    done = home.locator(f'[data-consult-alert="{consult_id}"][data-accepted]')
    await expect(done).to_contain_text("You accepted the consult on OKAFOR, Grace")
    await expect(done.get_by_role("link", name="Join the call")).to_have_attribute(
        "href", f"/consults/{consult_id}"
    )
    await expect(home).to_have_title("Home · Doorstep")
    assert await home.evaluate(SAME) == "yes"

    # The GP's status page says so without a reload, with the way into the call.
    await expect(live.locator("[data-consult-headline]")).to_have_text(
        "Dr Hana Heart accepted — join the call"
    )
    await expect(live.get_by_role("link", name="Join the call")).to_have_attribute(
        "href", f"/consults/{consult_id}"
    )
    await expect(live.locator("[data-live-say]")).to_have_text(
        "Dr Hana Heart accepted — join the call"
    )
    assert await page.evaluate(SAME) == "yes"
    publish_screenshot(await gp.screenshot("consult-status"), "consult-status.png")

    # Both lists agree.
    await home.goto(f"{url}/consults")
    row = home.locator(f'tr[data-consult-id="{consult_id}"]')
    await expect(row.get_by_role("link", name=re.compile("^Join the call"))).to_be_visible()
    body = await (await home.request.get(f"{url}/api/v1/consults/{consult_id}")).json()
    assert (body["status"], body["specialist"]) == ("accepted", "dr.heart")

    # A second request reaches the open consults list live; the GP withdraws it and the
    # alert, the title and the list's offer all go by themselves.
    await home.evaluate(MARK)
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    made = await page.request.post(
        f"{url}/api/v1/consults",
        data={"patient_id": body["patient_id"], "specialty": "cardiology", "reason": "Syncope"},
        headers={"X-CSRF-Token": csrf or ""},
    )
    assert made.status == 201, await made.text()
    second = (await made.json())["id"]
    alert = home.locator(f'[data-consult-alert="{second}"]')
    await expect(alert).to_contain_text("Syncope")
    await expect(home).to_have_title("(1) Consult request — Doorstep")
    offer = home.locator(f'li.consult-offer[data-consult-id="{second}"]')
    await expect(offer).to_contain_text("Syncope")
    await expect(home.locator("#offers-title")).to_have_text("1 request waiting for your answer")
    ended = await page.request.post(
        f"{url}/api/v1/consults/{second}/end", headers={"X-CSRF-Token": csrf or ""}
    )
    assert ended.status == 200, await ended.text()
    await expect(alert).to_have_count(0)
    await expect(offer).to_have_count(0)
    await expect(home).to_have_title("Consults · Doorstep")
    await expect(home.locator("[data-alerts-say]")).to_have_text(
        "The consult request on OKAFOR, Grace was withdrawn."
    )
    assert await home.evaluate(SAME) == "yes"
