"""A follow-up booked "from home", in Chromium: the specialist is reminded live 10 minutes
before; at the time the person opens the take-home link (no account), the specialist gets
the request and accepts, and the person's page moves on by itself into the call's lobby."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from server import db
from server.accounts.models import Organisation, User
from server.kiosk.models import KioskFollowUp, KioskVisit
from server.patients.models import Patient
from server.settings import Settings
from tests.e2e.conftest import DemoServer, running_demo
from tests.e2e.people import people

pytestmark = pytest.mark.e2e
WAIT_MS = 30_000


async def _booked_from_home(data_dir: Path, start: datetime) -> str:
    """A person of the demo corner with a home follow-up with Dr Hana Heart; its token."""
    settings = Settings(data_dir=data_dir, secret_key="e2e-secret-key-not-for-production")
    engine = db.create_engine(settings)
    token = secrets.token_urlsafe(32)
    try:
        async with db.create_sessionmaker(engine)() as session, session.begin():
            corner = await session.scalar(
                select(Organisation.id).where(Organisation.name == "Harbour Office Corner")
            )
            kiosk = await session.scalar(select(User.id).where(User.username == "kiosk.harbour"))
            heart = await session.scalar(select(User.id).where(User.username == "dr.heart"))
            assert corner is not None
            assert kiosk is not None
            assert heart is not None
            person = Patient(
                org_id=corner,
                name="Lam^Mei",
                birth_date=date(1950, 2, 3),
                sex="F",
                identifier=f"e2e-{token[:8]}",
            )
            session.add(person)
            await session.flush()
            visit = KioskVisit(
                device_id=kiosk, org_id=corner, person_id=person.id, closed_at=datetime.now(UTC)
            )
            session.add(visit)
            await session.flush()
            session.add(
                KioskFollowUp(
                    person_id=person.id,
                    org_id=corner,
                    visit_id=visit.id,
                    device_id=kiosk,
                    specialist_id=heart,
                    specialty="cardiology",
                    starts_at=start,
                    ends_at=start + timedelta(minutes=15),
                    where="home",
                    home_token=token,
                )
            )
    finally:
        await engine.dispose()
    return token


async def test_a_home_follow_up_reminds_then_takes_the_person_into_the_lobby(
    chromium: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "demo"
    environment = {"DOORSTEP_KIOSK_REMINDER_SECONDS": "1"}
    with running_demo(data_dir, environment) as (server, _):
        url = server.url
        async with people(chromium, server, widths=(1280, 800)) as (specialist, person):
            await specialist.sign_in("dr.heart")
            token = await _booked_from_home(data_dir, datetime.now(UTC) + timedelta(minutes=5))
            reminder = specialist.page.locator("[data-follow-up-reminder]")
            await expect(reminder).to_be_visible(timeout=WAIT_MS)
            await expect(reminder).to_contain_text("cardiology")
            await expect(reminder).to_contain_text("from home, booked at Harbour Office Corner")
            await expect(reminder).not_to_contain_text("Lam")  # no patient data in a reminder
            await specialist.screenshot("kiosk-follow-up-reminder")

            page = person.page
            await page.goto(f"{url}/kiosk/follow-ups/{token}")
            await expect(page.locator("main")).to_contain_text(
                "Dr Hana Heart has been told that you are here"
            )
            await person.screenshot("kiosk-follow-up-home-waiting")

            offer = specialist.page.locator("[data-consult-alert]").filter(
                has_text="Consult request"
            )
            await expect(offer).to_be_visible(timeout=WAIT_MS)
            await offer.get_by_role("button", name=re.compile("^Accept")).click()
            await expect(specialist.page.locator("[data-accepted]")).to_be_visible()

            await page.wait_for_url(
                re.compile(rf"^{re.escape(url)}/consults/[0-9]+$"), timeout=WAIT_MS
            )
            await expect(
                page.get_by_role("heading", name="Video call with Dr Hana Heart")
            ).to_be_visible()
            await expect(page.locator("main")).not_to_contain_text("LAM")
            await page.get_by_role("button", name="Join", exact=True).click()
            await expect(page.locator("[data-call-lobby]")).to_be_visible()
            await person.screenshot("kiosk-follow-up-home-lobby")


async def test_an_admin_rosters_a_night_shift_and_sees_the_coverage(
    chromium: Path, demo_server: DemoServer
) -> None:
    async with people(chromium, demo_server, widths=(1280,)) as (admin,):
        await admin.sign_in("admin")
        page = admin.page
        await page.get_by_role("link", name="Roster").click()
        await expect(page.get_by_role("heading", name="Roster", exact=True)).to_be_visible()
        form = page.locator("form[action='/admin/roster']")
        await form.get_by_label("Specialist").select_option("dr.skin")
        await form.get_by_label("Specialty").select_option("general")
        await form.get_by_label("Date").fill("2031-03-04")
        await form.get_by_label("Start (UTC)").fill("22:00")
        await form.get_by_label("End (UTC)").fill("06:00")
        await form.get_by_label("Repeat weekly for").select_option("2")
        await form.get_by_role("button", name="Add shift").click()
        await page.wait_for_url(f"{demo_server.url}/admin/roster?week=2031-03-03&done=added")
        await expect(page.get_by_role("status")).to_have_text("The shift was added.")
        grid = page.locator("table.coverage[data-specialty='general']")
        await expect(grid.locator("td[data-state='covered']")).to_have_count(8)
        await expect(grid.locator("td[data-state='gap']")).to_have_count(7 * 24 - 8)
        await expect(
            page.get_by_role("heading", name="General: 160 hours with nobody")
        ).to_be_visible()
        await admin.screenshot("kiosk-roster")
        await page.get_by_role(
            "button", name=re.compile("^Remove the shift of Dr Sara Skin")
        ).click()
        await expect(page.get_by_role("status")).to_have_text("The shift was removed.")
        await expect(grid.locator("td[data-state='covered']")).to_have_count(0)
