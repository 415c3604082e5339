"""Every kiosk screen in Chromium, in Chinese and in English, portrait (1080x1920) and landscape
(1920x1080): axe-core (from npm, injected by the test) finds no serious or critical violation,
every control is at least 56x56 CSS px and all visible text at least 20 px, computed by the
browser. The call is checked in test_kiosk.py's whole visit, and "Are you still there?" in its
inactivity test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, expect

from tests.e2e.conftest import DemoServer
from tests.e2e.test_kiosk import (
    BIRTH,
    LANDSCAPE,
    PHONE,
    PORTRAIT,
    as_admin,
    axe_source,
    check_screen,
    enrolled_kiosk,
    keys,
    launched,
    on_screen,
    press,
)

pytestmark = pytest.mark.e2e

__all__ = ["axe_source"]  # the fixture, shared with test_kiosk.py


def tomorrow_morning() -> tuple[str, str]:
    """A cardiology shift tomorrow, 09:00 to 12:00 UTC (ISO 8601)."""
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(hours=3)).isoformat()


@pytest.mark.parametrize(
    ("lang", "viewport"),
    [("zh", PORTRAIT), ("en", PORTRAIT), ("zh", LANDSCAPE), ("en", LANDSCAPE)],
    ids=["zh-portrait", "en-portrait", "zh-landscape", "en-landscape"],
)
async def test_every_screen_is_accessible_and_large(
    chromium: Path,
    demo_server: DemoServer,
    axe_source: str,
    tmp_path_factory: pytest.TempPathFactory,
    lang: str,
    viewport: ViewportSize,
) -> None:
    # axe in portrait (the markup is the same in landscape); sizes in both orientations.
    axe = axe_source if viewport is PORTRAIT else None
    orientation = "portrait" if viewport is PORTRAIT else "landscape"
    shots = (
        tmp_path_factory.getbasetemp() / "test-output" / "kiosk-screens" / f"{lang}-{orientation}"
    )
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nkiosk screens ({lang}, {orientation}): {shots}")
    async with launched(chromium) as browser:
        start, end = tomorrow_morning()
        shift = {"specialist": "dr.heart", "specialty": "cardiology", "start": start, "end": end}
        rostered = await as_admin(browser, demo_server, "/api/v1/roster", shift)
        assert rostered in (201, 409)  # 409: an earlier test's same shift
        kiosk = await enrolled_kiosk(browser, demo_server, viewport, shots)
        page = kiosk.page

        async def check(name: str) -> None:
            await on_screen(page, name)
            await kiosk.shot(name)
            await check_screen(page, axe, f"{lang} {orientation} {name}")

        await check("language")
        await page.locator(f'[data-lang="{lang}"]').click()
        await check("identify")
        await page.locator('[data-identify="id_number"]').click()
        await check("number")
        await press(page, "number", "back")
        await page.locator('[data-identify="phone"]').click()
        await keys(page, "number", "123")
        await press(page, "number", "next")  # too short: the message next to the entry
        await expect(page.locator('[data-error-for="phone"]')).to_be_visible()
        await check("number")
        await page.locator('[data-entry="phone"]').fill(PHONE)
        await press(page, "number", "next")
        await check("birth")
        await keys(page, "birth", "".join(BIRTH))
        await press(page, "birth", "next")
        await check("consent")
        await page.locator('[data-consent="no"]').click()
        await check("declined")
        await press(page, "declined", "back")
        await page.locator('[data-consent="yes"]').click()
        await check("welcome")
        await page.locator("[data-chart-toggle]").click()
        await check("welcome")
        await press(page, "welcome", "next")
        await check("bp")
        await keys(page, "bp", "400")
        await press(page, "bp", "next")
        await expect(page.locator('[data-error-for="systolic"]')).to_be_visible()
        await check("bp")
        await page.locator('[data-entry="systolic"]').fill("185")
        await page.locator('[data-entry="diastolic"]').fill("95")
        await press(page, "bp", "next")
        for name in ("spo2", "glucose", "temperature", "weight"):
            await check(name)
            await press(page, name, "skip")
        await check("results")
        await page.locator("[data-queue-urgent]").click()
        await check("queue")
        await press(page, "queue", "leave-queue")
        await on_screen(page, "results")
        await press(page, "results", "book")
        await check("specialty")  # cardiology chosen for them: the flag was about BP
        chosen = page.locator('[data-specialty="cardiology"]')
        await expect(chosen).to_have_attribute("aria-pressed", "true")
        await chosen.click()
        await check("slots")
        slot = page.locator("[data-slot-index]").first
        await expect(slot).to_contain_text("Dr Hana Heart")
        await slot.click()
        await check("where")
        await page.locator('[data-where="kiosk"]').click()
        await check("booked")
        await expect(page.locator("[data-booked]")).to_contain_text("Dr Hana Heart")
        await press(page, "booked", "summary")
        await check("summary")
        await expect(page.locator("[data-summary-follow-up]")).to_contain_text("Dr Hana Heart")
        await expect(page.locator("[data-summary-qr]")).to_be_visible()
        # The person lets their own GP clinic see the visit.
        await press(page, "summary", "clinic")
        await check("clinic")
        clinic = page.locator("[data-clinic-id]").filter(has_text="Riverside Clinic")
        await clinic.click()
        await on_screen(page, "summary")
        await expect(page.locator("[data-summary-clinic]")).to_contain_text("Riverside Clinic")
        await page.locator('[data-action="restart"][data-restart-button]').click()
        await on_screen(page, "language")
        assert kiosk.errors == [], "kiosk console errors"
