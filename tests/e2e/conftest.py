"""E2E fixtures: the real `doorstep demo` server in a subprocess and Debian's Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import free_port, require

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, ConsoleMessage, Page

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Exactly the flags of DESIGN.md, "Browser tests".
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
DEMO_PASSWORD = "doorstep-demo"
READY_TIMEOUT = 45.0


@dataclass
class DemoServer:
    """A running `doorstep demo` process."""

    url: str
    data_dir: Path
    log: Path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"doorstep demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"doorstep demo not ready after {READY_TIMEOUT:.0f}s:\n{log.read_text()}")


@contextmanager
def running_demo(
    data_dir: Path, environment: Mapping[str, str] | None = None
) -> Iterator[tuple[DemoServer, subprocess.Popen[bytes]]]:
    """`python -m server.cli demo` on a free port with its own data dir (and these DOORSTEP_
    settings), until the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    env.update(
        DOORSTEP_DATA_DIR=str(data_dir),
        DOORSTEP_SECRET_KEY="e2e-secret-key-not-for-production",
        DOORSTEP_LOG_JSON="false",
    )
    env.update(environment or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "demo",
                "--port",
                str(port),
                "--dicom-port",
                "0",
            ],
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield DemoServer(url=url, data_dir=data_dir, log=log), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The real server shared by the browser tests."""
    with running_demo(tmp_path_factory.mktemp("demo-data")) as (server, _):
        yield server


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium and the Playwright package, or skip (fail under DOORSTEP_REQUIRE_ALL=1)."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        require(False, "the playwright Python package is not installed")
    return CHROMIUM


@dataclass
class Browser:
    """A fresh Chromium profile on the demo server, collecting console errors."""

    context: BrowserContext
    page: Page
    server: DemoServer
    console_errors: list[str] = field(default_factory=list)

    async def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> None:
        """Sign in through the login page and wait for the home page (a kiosk's is /kiosk)."""
        page = self.page
        await page.goto(f"{self.server.url}/login")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(re.escape(self.server.url) + r"/(kiosk)?$"))

    async def sign_out(self) -> None:
        """Press Sign out and land on the login page (a kiosk's screen has no Sign out: its
        session is forgotten instead)."""
        button = self.page.get_by_role("button", name="Sign out")
        if await button.count() == 0:
            await self.page.context.clear_cookies()
            await self.page.goto(f"{self.server.url}/login")
        else:
            await button.click()
            await self.page.wait_for_url(f"{self.server.url}/login")
        await self.page.get_by_role("heading", name="Sign in").wait_for()

    async def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a screenshot to tests/artifacts/NAME.png (and return its path)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


def publish_screenshot(path: Path, name: str) -> None:
    """Copy a screenshot into docs/screenshots when DOORSTEP_UPDATE_SCREENSHOTS=1."""
    if os.environ.get("DOORSTEP_UPDATE_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / name)


def _is_real_error(message: ConsoleMessage) -> bool:
    # Error pages (401/403/404) are expected in these tests; anything else is a bug.
    return message.type == "error" and "Failed to load resource" not in message.text


@pytest.fixture
async def browser(
    chromium: Path, demo_server: DemoServer, tmp_path: Path
) -> AsyncIterator[Browser]:
    """Chromium with the DESIGN.md flags and a fresh user-data dir; fails on console errors."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 760},
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        page = context.pages[0] if context.pages else await context.new_page()
        found = Browser(context=context, page=page, server=demo_server)
        page.on(
            "console",
            lambda message: (
                found.console_errors.append(message.text) if _is_real_error(message) else None
            ),
        )
        page.on("pageerror", lambda error: found.console_errors.append(str(error)))
        try:
            yield found
        finally:
            await context.close()
        assert found.console_errors == [], "browser console errors (CSP violations?)"
