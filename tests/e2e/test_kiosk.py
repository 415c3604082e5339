"""The kiosk in Chromium at 1080x1920, in Chinese and in English: enrol with a code, check in on
the keypad, blood pressure 185/95 raises the urgent flag, the queue, the on-duty cardiologist's
page accepts, both sides decode each other's video, the specialist writes advice and ends the
call, the kiosk shows the advice, Finish leaves no trace of the person in the DOM, the storage,
the cookies or the history. Also: the inactivity reset (a short idle setting) and a reload
reset. Each screen is saved as test-output/kiosk/<lang>/NN-<screen>.png under pytest's base
temporary folder (printed).

Fake media devices (CHROMIUM_FLAGS) give each page a moving test pattern, so frames decoded
grow only while media really flows between the two pages.
"""

# ruff: noqa: RUF001 (the Chinese screens' own punctuation)
from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from tests.e2e.conftest import CHROMIUM_FLAGS, DEMO_PASSWORD, DemoServer, running_demo
from tests.support import require

pytestmark = pytest.mark.e2e

PORTRAIT: ViewportSize = {"width": 1080, "height": 1920}
LANDSCAPE: ViewportSize = {"width": 1920, "height": 1080}
WAIT_MS = 30_000
"""How long a step may take before the test fails (a hang guard, not a timing)."""
PHONE = "13800138000"
"""The demo's returning person (server/demo.py): five past visits for the trend."""
BIRTH = ("1951", "05", "20")
CORNER = "Harbour Office Corner"
WORDS: dict[str, dict[str, Any]] = {
    "zh": {
        "html_lang": "zh-Hans",
        "identify": "您想用什么方式登记？",
        "welcome": "欢迎回来",
        "urgent": "请马上看医生",
        "talk_now": "马上和医生通话",
        "queue": re.compile(r"您排在第 [0-9]+ 位"),
        "summary": "您的小结",
        "finish": "完成",
        "still_there": "您还在吗？",
        "still_here": "我还在",
        "table": "用表格显示",
    },
    "en": {
        "html_lang": "en",
        "identify": "How would you like to check in?",
        "welcome": "Welcome back",
        "urgent": "Please see a doctor now",
        "talk_now": "Talk to a doctor now",
        "queue": re.compile(r"You are number [0-9]+ in the queue"),
        "summary": "Your summary",
        "finish": "Finish",
        "still_there": "Are you still there?",
        "still_here": "I am still here",
        "table": "Show as a table",
    },
}
NO_TRACE = """() => ({
  local: window.localStorage.length,
  session: window.sessionStorage.length,
  history: window.history.length,
})"""


# Accessibility checks (here, and on every screen in test_kiosk_a11y.py) ----------------------

AXE_VERSION = "4"
AXE_CACHE = (
    Path(os.environ.get("DOORSTEP_TEST_CACHE", Path.home() / ".cache" / "doorstep-test")) / "npm"
)
AXE_RUN = """async () => {
  const found = await window.axe.run(document, { resultTypes: ["violations"] });
  return found.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""
SIZES = """() => {
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const small = [];
  for (const el of document.querySelectorAll("button, input, select, textarea, a[href]")) {
    const box = el.getBoundingClientRect();
    if (shown(el) && (box.width < 56 || box.height < 56)) {
      small.push(`${el.outerHTML.slice(0, 90)} ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  const tiny = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el || !shown(el)) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 20) tiny.push(`${size}px: ${walker.currentNode.textContent.trim().slice(0, 40)}`);
  }
  return { body: parseFloat(getComputedStyle(document.body).fontSize), small, tiny };
}"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core from npm (installed into the test cache when missing), or skip (fail in CI)."""
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share the cache: one installs while the others wait for it.
    with (AXE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            _install_axe()
        require(script.exists(), "npm could not install axe-core")
    return script.read_text(encoding="utf-8")


def _install_axe() -> None:
    """npm install axe-core into the test cache (skip, or fail in CI, without npm)."""
    npm = shutil.which("npm")
    require(npm is not None, "npm is not installed (apt-get install npm), needed for axe-core")
    assert npm is not None
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix"]
    command += [str(AXE_CACHE), f"axe-core@{AXE_VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode:
        print(f"npm install axe-core failed: {done.stderr[-2000:]}")


async def serious_violations(page: Page, axe: str) -> list[str]:
    """axe-core's serious and critical violations of what the page shows now."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe)
    found: list[str] = await page.evaluate(AXE_RUN)
    return found


async def check_screen(page: Page, axe: str | None, where: str) -> None:
    """No serious or critical axe violation (when axe is given); every control at least
    56x56 CSS px, the body and every visible text at least 20 px."""
    if axe is not None:
        assert await serious_violations(page, axe) == [], where
    sizes = await page.evaluate(SIZES)
    assert sizes["body"] >= 20, where
    assert sizes["small"] == [], where
    assert sizes["tiny"] == [], where


# Browsers --------------------------------------------------------------------------------


@dataclass
class Screen:
    """One browser context's page (a kiosk or a doctor), collecting console errors."""

    context: BrowserContext
    page: Page
    server: DemoServer
    errors: list[str] = field(default_factory=list)
    shots: Path | None = None
    count: int = 0

    async def shot(self, name: str) -> None:
        """Save the page as NN-<name>.png in the screenshot folder (when there is one)."""
        if self.shots is None:
            return
        self.count += 1
        await self.page.wait_for_timeout(250)  # let the pressed state and focus ring settle
        await self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"))


@asynccontextmanager
async def launched(chromium: Path) -> AsyncIterator[Browser]:
    """One headless Chromium with the DESIGN.md flags."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_screen(
    browser: Browser, server: DemoServer, viewport: ViewportSize, shots: Path | None = None
) -> Screen:
    """A fresh context (its own cookies) at this viewport."""
    context = await browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    screen = Screen(context=context, page=await context.new_page(), server=server, shots=shots)
    screen.page.on(
        "console",
        lambda message: (
            screen.errors.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    screen.page.on("pageerror", lambda error: screen.errors.append(str(error)))
    return screen


async def sign_in(screen: Screen, username: str) -> None:
    page = screen.page
    await page.goto(f"{screen.server.url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{screen.server.url}/")


async def csrf(page: Page) -> str:
    return await page.locator('meta[name="csrf-token"]').get_attribute("content") or ""


async def as_admin(browser: Browser, server: DemoServer, path: str, body: dict[str, Any]) -> int:
    """POST this JSON as the demo's administrator (signed in, with the CSRF token): the status."""
    admin = await open_screen(browser, server, {"width": 1280, "height": 900})
    await sign_in(admin, "admin")
    answer = await admin.page.request.post(
        f"{server.url}{path}", data=body, headers={"X-CSRF-Token": await csrf(admin.page)}
    )
    assert admin.errors == []
    await admin.context.close()
    return answer.status


async def enrolment_code(browser: Browser, server: DemoServer) -> str:
    """An administrator enrols a new kiosk device of the demo corner and makes its one-time
    enrolment code (the admin devices page, then POST /api/v1/kiosk/enrolments)."""
    admin = await open_screen(browser, server, {"width": 1280, "height": 900})
    await sign_in(admin, "admin")
    page = admin.page
    device = f"kiosk.e2e-{secrets.token_hex(3)}"
    await page.goto(f"{server.url}/admin/devices")
    await page.get_by_label("Device name").fill(device)
    await page.get_by_label("Location").select_option(label=f"{CORNER} (corner)")
    await page.get_by_role("button", name="Enrol device").click()
    await expect(page.get_by_role("heading", name="Device enrolled")).to_be_visible()
    made = await page.request.post(
        f"{server.url}/api/v1/kiosk/enrolments",
        data={"device": device},
        headers={"X-CSRF-Token": await csrf(page)},
    )
    assert made.status == 201, await made.text()
    code: str = (await made.json())["code"]
    assert admin.errors == []
    await admin.context.close()
    return code


async def enrolled_kiosk(
    browser: Browser, server: DemoServer, viewport: ViewportSize, shots: Path | None = None
) -> Screen:
    """A fresh browser that opened /kiosk?enrol=<code>: the device cookie, the first screen."""
    code = await enrolment_code(browser, server)
    kiosk = await open_screen(browser, server, viewport, shots)
    await kiosk.page.goto(f"{server.url}/kiosk?enrol={code}")
    await kiosk.page.wait_for_url(f"{server.url}/kiosk")
    await expect(kiosk.page.locator("[data-kiosk-ready]")).to_be_attached()
    await expect(screen_of(kiosk.page, "language")).to_be_visible()
    return kiosk


# Driving the kiosk ---------------------------------------------------------------------------


def screen_of(page: Page, name: str) -> Locator:
    return page.locator(f'[data-screen="{name}"]')


async def on_screen(page: Page, name: str) -> None:
    await expect(page.locator(f'[data-screen="{name}"]')).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("[data-module=kiosk-app]")).to_have_attribute("data-current", name)


DELETE = "\N{ERASE TO THE LEFT}"


async def keys(page: Page, screen: str, text: str) -> None:
    """Press these keys of the screen's on-screen keypad, one by one (DELETE: the delete key)."""
    for key in text:
        name = "delete" if key == DELETE else key
        await page.locator(f'[data-screen="{screen}"] [data-key="{name}"]:visible').click()


async def press(page: Page, screen: str, action: str) -> None:
    await page.locator(f'[data-screen="{screen}"] [data-action="{action}"]:visible').click()


async def check_in(kiosk: Screen, lang: str, phone: str = PHONE) -> int:
    """Language → phone → date of birth → consent: the visit's id (shots of each screen)."""
    page = kiosk.page
    words = WORDS[lang]
    await kiosk.shot("language")
    await page.locator(f'[data-lang="{lang}"]').click()
    await on_screen(page, "identify")
    await expect(page.locator("html")).to_have_attribute("lang", words["html_lang"])
    await expect(page.get_by_role("heading", level=1)).to_have_text(words["identify"])
    await kiosk.shot("identify")
    await page.locator('[data-identify="phone"]').click()
    await on_screen(page, "number")
    await keys(page, "number", phone)
    await expect(page.locator('[data-entry="phone"]')).to_have_value(phone)
    await kiosk.shot("number")
    await press(page, "number", "next")
    await on_screen(page, "birth")
    await keys(page, "birth", "".join(BIRTH))
    await kiosk.shot("birth")
    await press(page, "birth", "next")
    await on_screen(page, "consent")
    await kiosk.shot("consent")
    await page.locator('[data-consent="yes"]').click()
    checked_in = page.locator("[data-module=kiosk-app][data-visit]")
    await expect(checked_in).to_be_attached(timeout=WAIT_MS)
    # The number and the date of birth left the page with the check-in.
    typed = "() => [...document.querySelectorAll('[data-entry]')].map((e) => e.value).join('')"
    assert await page.evaluate(typed) == ""
    return int(await page.locator("[data-module=kiosk-app]").get_attribute("data-visit") or "0")


async def past_readings(kiosk: Screen) -> list[dict[str, Any]]:
    """The checked-in person's readings with a blood pressure (GET .../people/{id}/vitals)."""
    page = kiosk.page
    visit = await page.locator("[data-module=kiosk-app]").get_attribute("data-visit")
    url = kiosk.server.url
    person = (await (await page.request.get(f"{url}/api/v1/kiosk/visits/{visit}")).json())[
        "person_id"
    ]
    found = await (await page.request.get(f"{url}/api/v1/kiosk/people/{person}/vitals")).json()
    return [r for r in found["readings"] if r["systolic"] is not None]


async def blood_pressure(kiosk: Screen, lang: str) -> None:
    """The trend (a returning person), an implausible value refused at its field, 185/95."""
    page = kiosk.page
    await on_screen(page, "welcome")
    await expect(page.get_by_role("heading", level=1)).to_have_text(WORDS[lang]["welcome"])
    chart = page.locator('[data-screen="welcome"] svg[role="img"]')
    await expect(chart).to_be_visible()
    # The chart's summary names the latest past visit; the table has a row for each visit.
    past = await past_readings(kiosk)
    assert len(past) >= 5  # the demo's five, and those of earlier tests
    label = await chart.get_attribute("aria-label") or ""
    latest = past[-1]
    assert f"{latest['systolic']}" in label, label
    assert f"{latest['diastolic']}" in label, label
    await kiosk.shot("welcome")
    await page.locator("[data-chart-toggle]").click()
    rows = page.locator("[data-bp-table] tr")
    await expect(rows.first).to_be_visible()
    assert await rows.count() == len(past)
    await expect(page.locator("[data-chart-toggle]")).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("[data-bp-chart]")).to_be_hidden()
    await kiosk.shot("welcome-table")
    await press(page, "welcome", "next")
    await on_screen(page, "bp")
    await keys(page, "bp", "400")
    await keys(page, "bp", "95")
    await page.locator('[data-entry="heart_rate"]').click()
    await keys(page, "bp", "80")
    await press(page, "bp", "next")
    error = page.locator('[data-error-for="systolic"]')
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("400")
    await expect(page.locator('[data-entry="systolic"]')).to_have_attribute("aria-invalid", "true")
    await kiosk.shot("bp-implausible")
    await page.locator('[data-entry="systolic"]').click()
    for _ in range(3):
        await keys(page, "bp", DELETE)
    await expect(page.locator('[data-entry="systolic"]')).to_have_value("")
    await keys(page, "bp", "185")
    await expect(page.locator('[data-entry="systolic"]')).to_have_value("185")
    await kiosk.shot("bp")
    await press(page, "bp", "next")


async def other_measurements(kiosk: Screen) -> None:
    page = kiosk.page
    await on_screen(page, "spo2")
    await keys(page, "spo2", "97")
    await kiosk.shot("spo2")
    await press(page, "spo2", "next")
    for name in ("glucose", "temperature", "weight"):
        await on_screen(page, name)
        await kiosk.shot(name)
        await press(page, name, "skip")


async def no_trace(kiosk: Screen, history: int, secrets_left: tuple[str, ...]) -> None:
    """Back on the first screen with nothing of the person: DOM, storage, cookies, history."""
    page = kiosk.page
    await page.wait_for_url(f"{kiosk.server.url}/kiosk", timeout=WAIT_MS)
    await on_screen(page, "language")
    html = await page.content()
    text = await page.locator("body").inner_text()
    for secret in secrets_left:
        assert secret not in html, secret
        assert secret not in text, secret
    found = await page.evaluate(NO_TRACE)
    assert found == {"local": 0, "session": 0, "history": history}
    databases = await page.evaluate("async () => (await indexedDB.databases()).length")
    assert databases == 0
    names = sorted(c["name"] for c in await kiosk.context.cookies())
    assert names == ["doorstep_kiosk"], names


# The whole visit -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shot_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.getbasetemp() / "test-output" / "kiosk"
    root.mkdir(parents=True, exist_ok=True)
    yield root
    print(f"\nkiosk screenshots: {root}")


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_visit_from_check_in_to_the_doctors_advice_leaves_no_trace(
    chromium: Path, demo_server: DemoServer, shot_root: Path, axe_source: str, lang: str
) -> None:
    shots = shot_root / lang
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nkiosk screenshots ({lang}): {shots}")
    words = WORDS[lang]
    advice = f"Take one tablet every morning and measure again in a week ({secrets.token_hex(3)})."
    async with launched(chromium) as browser:
        doctor = await open_screen(browser, demo_server, {"width": 1280, "height": 900})
        await sign_in(doctor, "dr.heart")  # the demo's cardiologist
        duty = await doctor.page.request.put(
            f"{demo_server.url}/api/v1/duty",
            data={"on_duty": True},
            headers={"X-CSRF-Token": await csrf(doctor.page)},
        )
        assert duty.status == 200, await duty.text()  # on duty, whatever other tests left
        kiosk = await enrolled_kiosk(browser, demo_server, PORTRAIT, shots)
        page = kiosk.page
        history = (await page.evaluate(NO_TRACE))["history"]

        visit = await check_in(kiosk, lang)
        await blood_pressure(kiosk, lang)
        await other_measurements(kiosk)

        # Results: the urgent flag, big and first, with "talk to a doctor now" as the way on.
        await on_screen(page, "results")
        urgent = page.locator('[data-screen="results"] [data-urgent]')
        await expect(urgent).to_be_visible()
        await expect(urgent).to_have_attribute("role", "alert")
        await expect(urgent).to_contain_text(words["urgent"])
        await expect(page.locator('[data-result="bp"] [data-value]')).to_have_text("185/95")
        await expect(page.locator('[data-result="bp"]')).to_have_attribute(
            "data-severity", "urgent"
        )
        talk = page.locator("[data-queue-urgent]")
        await expect(talk).to_be_visible()
        await expect(talk).to_contain_text(words["talk_now"])
        await expect(talk).to_be_focused()
        await expect(page.locator("[data-queue-normal]")).to_be_hidden()
        # It was heard too: the page beeped (Web Audio; the taps so far allowed sound).
        await expect(page.locator('[data-screen="results"]')).to_have_attribute(
            "data-beeped", "yes"
        )
        await kiosk.shot("results")

        # The queue, and the cardiologist's alert.
        await talk.click()
        await on_screen(page, "queue")
        await expect(page.locator("[data-queue-position]")).to_have_text(words["queue"])
        await kiosk.shot("queue")
        queued = await (
            await page.request.get(f"{demo_server.url}/api/v1/kiosk/visits/{visit}/queue")
        ).json()
        consult = queued["consult_id"]
        assert queued["specialty"] == "cardiology"
        home = doctor.page
        await home.goto(f"{demo_server.url}/")
        alert = home.locator(f'[data-consult-alert="{consult}"]')
        await expect(alert).to_be_visible(timeout=WAIT_MS)
        await alert.get_by_role("button", name=re.compile("^Accept")).click()
        await expect(
            home.locator(f'[data-consult-alert="{consult}"][data-accepted]')
        ).to_be_visible()
        await home.goto(f"{demo_server.url}/consults/{consult}")
        await home.get_by_role("button", name="Join", exact=True).click()

        # Both see each other: frames decoded on each side's remote tile.
        await on_screen(page, "call")
        await expect(page.locator(".kiosk-call-tile")).to_have_attribute(
            "data-frames-decoded", re.compile("^[1-9][0-9]*$"), timeout=WAIT_MS
        )
        await expect(home.locator(".call-tile")).to_have_attribute(
            "data-frames-decoded", re.compile("^[1-9][0-9]*$"), timeout=WAIT_MS
        )
        await kiosk.shot("call")
        await home.screenshot(path=str(shots / "specialist-call.png"), full_page=True)
        await check_screen(page, axe_source, "call")
        # The specialist sees this visit's vitals and the trend.
        panel = home.locator('[data-module="kiosk-vitals"]')
        await expect(panel.locator('[data-vital="bp"] [data-value]')).to_have_text("185/95")
        await expect(panel.locator('svg[role="img"]')).to_be_visible()

        # Advice, then the end of the consult.
        await home.get_by_label("Kind").select_option("advice")
        await home.get_by_label("Text").fill(advice)
        await home.get_by_role("button", name="Add to the record").click()
        await expect(home.locator("[data-notes-added]")).to_contain_text(advice)
        await home.get_by_role("button", name="End consult").first.click()
        await home.locator("[data-call-confirm-end]").click()

        # The kiosk's summary: the advice in large type, the take-home QR code.
        await on_screen(page, "summary")
        await expect(page.get_by_role("heading", level=1)).to_have_text(words["summary"])
        await expect(page.locator("[data-summary-advice]")).to_contain_text(advice, timeout=WAIT_MS)
        await expect(page.locator("[data-summary-qr]")).to_be_visible()
        await kiosk.shot("summary")
        await check_screen(page, axe_source, "summary")
        # Printed: the summary alone (no buttons, no bar), the advice and the QR code on paper.
        await page.emulate_media(media="print")
        await expect(page.locator('[data-screen="summary"] .kiosk-actions')).to_be_hidden()
        await expect(page.locator(".kiosk-bar")).to_be_hidden()
        await expect(page.locator("[data-summary-advice]")).to_be_visible()
        await expect(page.locator("[data-summary-qr]")).to_be_visible()
        await page.emulate_media(media="screen")

        # Finish: a fresh first screen, nothing of the person anywhere.
        await page.locator('[data-screen="summary"] [data-action="finish"]').click()
        await no_trace(kiosk, history, (PHONE, advice, "185/95"))
        await kiosk.shot("after-finish")
        gone = await page.request.get(f"{demo_server.url}/api/v1/kiosk/visits/{visit}")
        assert gone.status == 404
        assert kiosk.errors == [], "kiosk console errors"
        assert doctor.errors == [], "specialist console errors"


async def test_a_reload_is_a_reset(chromium: Path, demo_server: DemoServer) -> None:
    async with launched(chromium) as browser:
        kiosk = await enrolled_kiosk(browser, demo_server, PORTRAIT)
        page = kiosk.page
        history = (await page.evaluate(NO_TRACE))["history"]
        visit = await check_in(kiosk, "en")
        await on_screen(page, "welcome")
        await page.reload()
        # The chosen language stays (it is in the address); the person does not.
        await on_screen(page, "identify")
        assert await page.locator("[data-module=kiosk-app]").get_attribute("data-visit") is None
        gone = await page.request.get(f"{demo_server.url}/api/v1/kiosk/visits/{visit}")
        assert gone.status == 404
        assert PHONE not in await page.content()
        # Nothing of their history is left: no chart, no table rows.
        assert await page.locator("[data-bp-chart] svg, [data-bp-table] tr").count() == 0
        assert (await page.evaluate(NO_TRACE))["history"] == history
        assert kiosk.errors == []


async def test_the_cuff_s_numbers_appear_by_themselves(
    chromium: Path, demo_server: DemoServer
) -> None:
    """A connected cuff's bridge posts the reading (source "device"): the blood pressure screen
    fills in by itself, and Next does not post it again."""
    async with launched(chromium) as browser:
        kiosk = await enrolled_kiosk(browser, demo_server, LANDSCAPE)
        page = kiosk.page
        visit = await check_in(kiosk, "zh")
        await press(page, "welcome", "next")
        await on_screen(page, "bp")
        status = page.locator("[data-cuff-status]")
        await expect(status).to_have_text("正在等血压计的结果……您也可以自己输入数字。")
        posted = await page.request.post(
            f"{demo_server.url}/api/v1/kiosk/visits/{visit}/vitals",
            data={"systolic": 152, "diastolic": 91, "heart_rate": 72, "source": "device"},
            headers={"X-CSRF-Token": await csrf(page)},
        )
        assert posted.status == 200, await posted.text()
        await expect(page.locator('[data-entry="systolic"]')).to_have_value("152", timeout=WAIT_MS)
        await expect(page.locator('[data-entry="diastolic"]')).to_have_value("91")
        await expect(page.locator('[data-entry="heart_rate"]')).to_have_value("72")
        await expect(status).to_have_text("血压计已经把结果传过来了。")
        posts: list[str] = []
        page.on(
            "request",
            lambda request: (
                posts.append(request.url)
                if request.method == "POST" and request.url.endswith("/vitals")
                else None
            ),
        )
        await press(page, "bp", "next")
        await on_screen(page, "spo2")
        assert posts == []
        for name in ("spo2", "glucose", "temperature", "weight"):
            await press(page, name, "skip")
        await on_screen(page, "results")
        await expect(page.locator('[data-result="bp"] [data-value]')).to_have_text("152/91")
        bp = page.locator('[data-result="bp"]')
        await expect(bp).to_have_attribute("data-severity", "warning")  # high, not a crisis
        assert kiosk.errors == []


@pytest.fixture(scope="module")
def quick_idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """A demo server whose kiosks ask "Are you still there?" after 15 s, then count 15 s down
    (the countdown is never longer than the idle time), leaving time to check the question."""
    environment = {"DOORSTEP_KIOSK_IDLE_SECONDS": "15"}
    with running_demo(tmp_path_factory.mktemp("kiosk-idle"), environment) as (server, _):
        yield server


async def test_inactivity_asks_then_resets(
    chromium: Path, quick_idle_server: DemoServer, axe_source: str
) -> None:
    words = WORDS["zh"]
    async with launched(chromium) as browser:
        kiosk = await enrolled_kiosk(browser, quick_idle_server, PORTRAIT)
        page = kiosk.page
        history = (await page.evaluate(NO_TRACE))["history"]
        visit = await check_in(kiosk, "zh")
        await on_screen(page, "welcome")

        # 15 s without a touch: the question, with a countdown; "I am still here" keeps the visit.
        overlay = page.get_by_role("alertdialog", name=words["still_there"])
        await expect(overlay).to_be_visible(timeout=WAIT_MS)
        count = page.locator("[data-idle-count]")
        first = int(await count.inner_text())
        await expect(count).not_to_have_text(str(first), timeout=WAIT_MS)
        assert int(await count.inner_text()) < first
        await expect(overlay.get_by_role("button", name=words["still_here"])).to_be_focused()
        await check_screen(page, axe_source, "still there?")
        await overlay.get_by_role("button", name=words["still_here"]).click()
        await expect(overlay).to_be_hidden()
        await on_screen(page, "welcome")
        kept = await page.request.get(f"{quick_idle_server.url}/api/v1/kiosk/visits/{visit}")
        assert kept.status == 200

        # Then nobody answers: the visit closes and a fresh first screen replaces the page.
        await expect(overlay).to_be_visible(timeout=WAIT_MS)
        await no_trace(kiosk, history, (PHONE,))
        assert await page.locator("[data-bp-chart] svg, [data-bp-table] tr").count() == 0
        gone = await page.request.get(f"{quick_idle_server.url}/api/v1/kiosk/visits/{visit}")
        assert gone.status == 404
        assert kiosk.errors == []
