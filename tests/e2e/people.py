"""Two people at once in one Chromium, each in their own context (their own cookies)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import BrowserContext, Page

from tests.e2e.conftest import ARTIFACTS, CHROMIUM_FLAGS, DEMO_PASSWORD, DemoServer


@dataclass
class Person:
    """One signed-in person's browser context and page."""

    context: BrowserContext
    page: Page
    server: DemoServer
    errors: list[str] = field(default_factory=list)

    async def sign_in(self, username: str) -> None:
        page = self.page
        await page.goto(f"{self.server.url}/login")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(DEMO_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{self.server.url}/")

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@asynccontextmanager
async def two_people(
    chromium: Path, server: DemoServer, *, widths: Sequence[int] = (1280, 1280)
) -> AsyncIterator[tuple[Person, Person]]:
    """Two fresh contexts at these viewport widths; fails on either's console errors."""
    async with people(chromium, server, widths=widths) as found:
        yield found[0], found[1]


@asynccontextmanager
async def people(
    chromium: Path, server: DemoServer, *, widths: Sequence[int]
) -> AsyncIterator[list[Person]]:
    """A fresh context per viewport width; fails on anyone's console errors."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        found = []
        for width in widths:
            context = await launched.new_context(
                viewport={"width": width, "height": 800}, locale="en-GB", timezone_id="UTC"
            )
            context.set_default_timeout(10_000)
            person = Person(context=context, page=await context.new_page(), server=server)
            person.page.on(
                "console",
                lambda message, p=person: (
                    p.errors.append(message.text)
                    if message.type == "error" and "Failed to load resource" not in message.text
                    else None
                ),
            )
            person.page.on("pageerror", lambda error, p=person: p.errors.append(str(error)))
            found.append(person)
        try:
            yield found
        finally:
            await launched.close()
        for number, person in enumerate(found, 1):
            assert person.errors == [], f"person {number}'s browser console errors"
