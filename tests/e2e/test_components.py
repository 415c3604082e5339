"""The data-module initialiser in a real browser: components start once, no globals, no errors."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Page, Response, expect

from tests.e2e.conftest import Browser

pytestmark = pytest.mark.e2e

MAIN_PAGES = {
    "gp.river": ["/", "/patients", "/patients/new", "/upload", "/studies"],
    "dr.heart": ["/"],
    "kiosk.harbour": ["/"],
    "admin": ["/", "/admin/organisations", "/admin/users", "/admin/devices"],
}
# Every data-module root has data-<name>-init once its component has started.
NOT_STARTED = """() => [...document.querySelectorAll("[data-module]")]
    .filter((root) => !root.hasAttribute(`data-${root.dataset.module}-init`))
    .map((root) => root.dataset.module)"""
COMPONENTS = "() => [...document.querySelectorAll('[data-module]')].map((r) => r.dataset.module)"
INIT_ALL = """async (html) => {
    if (html) document.body.insertAdjacentHTML("beforeend", html);
    const { initAll } = await import("/static/core/init.mjs");
    return (await initAll()).map((component) => component.constructor.moduleName);
}"""


async def components(page: Page) -> list[str]:
    """The data-module names on the page, checking that each one has started by page load."""
    await page.wait_for_load_state("load")
    assert await page.evaluate(NOT_STARTED) == [], page.url
    names: list[str] = await page.evaluate(COMPONENTS)
    return names


async def new_globals(browser: Browser) -> list[str]:
    """Own properties of this page's window that the same page without its modules lacks."""
    blank = await browser.context.new_page()
    try:
        await blank.route("**/static/core/main.mjs*", lambda route: route.abort())
        await blank.goto(browser.page.url)
        assert await blank.evaluate(NOT_STARTED) == await blank.evaluate(COMPONENTS)
        baseline = set(await blank.evaluate("Object.getOwnPropertyNames(window)"))
    finally:
        await blank.close()
    here = await browser.page.evaluate("Object.getOwnPropertyNames(window)")
    return sorted(set(here) - baseline)


async def test_main_pages_start_their_components_without_globals(browser: Browser) -> None:
    page = browser.page
    await page.goto(f"{browser.server.url}/login")
    assert await components(page) == []
    seen: set[str] = set()
    for username, paths in MAIN_PAGES.items():
        await browser.sign_in(username)
        for path in paths:
            await page.goto(f"{browser.server.url}{path}")
            names = await components(page)
            # Everyone's pages sign out after a while; a kiosk's screen resets itself instead.
            assert ("idle-logoff" in names) == (username != "kiosk.harbour"), path
            seen |= set(names)
            assert await page.evaluate("typeof window.Doorstep") == "undefined"
            assert await new_globals(browser) == [], path
        if username == "gp.river":
            await page.goto(f"{browser.server.url}/patients/new")
            await page.get_by_role("button", name="Register patient").click()
            await expect(page.get_by_role("alert").filter(has_text="problem")).to_be_focused()
            seen |= set(await components(page))
        if username == "admin":
            await page.goto(f"{browser.server.url}/admin/devices")
            await page.get_by_label("Device name").fill(f"kiosk.c-{secrets.token_hex(3)}")
            location = page.get_by_label("Location")
            await location.select_option(label="Harbour Office Corner (corner)")
            await page.get_by_role("button", name="Enrol device").click()
            await expect(page.get_by_role("heading", name="Device enrolled")).to_be_visible()
            seen |= set(await components(page))
        await browser.sign_out()
    assert seen == {
        "idle-logoff",
        "upload",
        "error-summary",
        "copy-button",
        "duty-toggle",
        "consult-alerts",
        "kiosk-app",
    }
    # The browser fixture fails the test on any console error of these pages.


async def test_components_start_once(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    await page.goto(f"{browser.server.url}/upload")
    assert await components(page) == ["upload", "idle-logoff"]
    # Starting again finds nothing new: no component runs twice on one element.
    assert await page.evaluate(INIT_ALL, "") == []
    await page.locator("#upload-files").set_input_files(
        {"name": "notes.dcm", "mimeType": "application/octet-stream", "buffer": b"hello"}
    )
    item = page.get_by_role("list", name="Files").get_by_role("listitem")
    await expect(item.locator(".upload-outcome")).to_have_text("rejected")
    await expect(item).to_have_count(1)  # one listener, one upload
    await expect(page.locator("#upload-overall-text")).to_have_text("100% · 1 of 1 files")


async def test_a_failing_component_does_not_stop_the_others(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    await page.route(
        "**/static/shell/idle-logoff.mjs",
        lambda route: route.fulfill(
            content_type="text/javascript",
            body='export default class Broken { static moduleName = "idle-logoff";'
            ' constructor() { throw new Error("broken on purpose"); } }',
        ),
    )
    await page.goto(f"{browser.server.url}/upload")
    await expect(page.locator("[data-upload-init]")).to_have_count(1)
    await expect(page.locator("[data-idle-logoff-init]")).to_have_count(0)
    await page.unroute("**/static/shell/idle-logoff.mjs")

    # An unknown name, a lazily loaded component, and one whose module fails to load.
    probe = """async () => {
        const { components } = await import("/static/core/components.mjs");
        components.set("probe", { load: async () => ({ default: class Probe {
            static moduleName = "probe";
            constructor(root) { root.textContent = "started"; }
        } }) });
        components.set("unloadable", { load: () => import("/static/nowhere.mjs") });
    }"""
    await page.evaluate(probe)
    started = await page.evaluate(
        INIT_ALL,
        '<div data-module="no-such-component"></div><div data-module="unloadable"></div>'
        '<div data-module="probe" id="probe"></div>',
    )
    assert started == ["probe"]
    await expect(page.locator("#probe")).to_have_text("started")
    await expect(page.locator("[data-probe-init]")).to_have_count(1)
    await expect(page.locator("[data-upload-init]")).to_have_count(1)
    errors = list(browser.console_errors)
    browser.console_errors.clear()  # expected here, and only these
    assert len(errors) == 4, errors
    # On page load, and again on initAll(): a component that failed is tried again.
    assert ["the idle-logoff component did not start" in e for e in errors].count(True) == 2
    assert "the idle-logoff component did not start" in errors[0]
    assert any('no component is registered as "no-such-component"' in e for e in errors)
    assert any("the unloadable component did not load" in e for e in errors)


async def test_modules_are_revalidated_and_the_entry_is_versioned(browser: Browser) -> None:
    page = browser.page
    await browser.sign_in("gp.river")
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    for _ in range(2):
        responses.clear()
        await page.goto(f"{browser.server.url}/upload")
        await page.wait_for_load_state("networkidle")
    modules = [r for r in responses if ".mjs" in r.url]
    assert len(modules) >= 10
    for response in modules:
        headers = await response.all_headers()
        if "?v=" in response.url:
            assert "/static/core/main.mjs?v=" in response.url
            assert headers["cache-control"] == "public, max-age=31536000, immutable"
            continue
        # Imported modules: kept, but revalidated on every use with their content ETag.
        asked = await response.request.all_headers()
        assert response.status == 304, response.url
        assert asked["if-none-match"] == headers["etag"], response.url
        assert headers["cache-control"] == "no-cache", response.url
