"""Sign-in, sign-out, each role's home page and the shell's security properties."""

from __future__ import annotations

import posixpath
import re

import pytest
from sqlalchemy import update

from server import keys
from server.accounts.models import User
from server.pages.sign_in import safe_next
from tests.forms import csrf_meta, login_csrf, post_form, sign_in
from tests.support import PASSWORD, Client, World


async def test_login_page_sets_form_cookie(client: Client, world: World) -> None:
    response = await client.get("/login")
    assert response.status == 200
    html = await response.text()
    assert "Sign in" in html
    assert login_csrf(html) == response.cookies["doorstep_login_csrf"].value
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_wrong_password_shows_error_and_keeps_username(client: Client, world: World) -> None:
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": "gp-a", "password": "nope", "login_csrf": login_csrf(await form.text())},
        allow_redirects=False,
    )
    assert response.status == 401
    html = await response.text()
    assert "Wrong username or password." in html
    assert 'value="gp-a"' in html
    assert "doorstep_session" not in response.cookies


async def test_a_disabled_account_is_told_so_on_the_sign_in_page(
    client: Client, world: World
) -> None:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(User).where(User.id == world.users["gp-a"]).values(is_active=False)
        )
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": "gp-a",
            "password": PASSWORD,
            "login_csrf": login_csrf(await form.text()),
        },
        allow_redirects=False,
    )
    assert response.status == 403
    html = await response.text()
    assert "This account is disabled; ask your administrator." in html
    assert "Wrong username or password." not in html
    assert "doorstep_session" not in response.cookies


async def test_login_without_form_token_is_refused(client: Client, world: World) -> None:
    await client.get("/login")
    response = await client.post(
        "/login", data={"username": "gp-a", "password": "x"}, allow_redirects=False
    )
    assert response.status == 403
    html = await response.text()
    assert "expired" in html
    # A fresh form token comes with the refusal, so the next try can succeed.
    assert login_csrf(html) == response.cookies["doorstep_login_csrf"].value


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/patients?q=a", "/patients?q=a"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("relative", "/"),
    ],
)
def test_safe_next(target: str, expected: str) -> None:
    assert safe_next(target) == expected


async def test_pages_redirect_to_sign_in(client: Client, world: World) -> None:
    response = await client.get("/patients", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/patients"


@pytest.mark.parametrize("authorization", ["Basic x", "Bearer bad", "Bearer"])
async def test_bad_credentials_on_the_sign_in_page_show_it_not_a_redirect_loop(
    client: Client, world: World, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    page = await client.get("/patients", headers=headers, allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/login?next=/patients"
    response = await client.get("/login?next=/patients", headers=headers, allow_redirects=False)
    assert response.status == 200
    assert "Sign in" in await response.text()


async def test_signed_in_user_skips_login_form(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    response = await client.get("/login", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_sign_out_ends_the_session(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    status, _, location = await post_form(client, "/logout", None)
    assert status == 403  # no CSRF token: refused, still signed in
    assert (await client.get("/api/v1/me")).status == 200
    status, _, location = await post_form(client, "/logout", csrf)
    assert (status, location) == (303, "/login")
    assert (await client.get("/api/v1/me")).status == 401
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_idle_reason_is_explained(client: Client, world: World) -> None:
    html = await (await client.get("/login?reason=idle")).text()
    assert "signed out because nothing happened" in html


@pytest.mark.parametrize(
    ("username", "expected", "nav"),
    [
        (
            "gp-a",
            ["Register a patient", "Recently registered", "ABLE, Alice"],
            ["/patients", "/reports"],
        ),
        (
            "cardio",
            [
                "Your specialties",
                "Cardiology",
                "No reading requests are waiting.",
                "Go to the worklist",
            ],
            ["/worklist", "/reports"],
        ),
        ("kiosk", ["Welcome to the health point", "corner"], []),
        (
            "admin",
            ["Network administration", "Organisations", "Devices"],
            ["/admin/organisations", "/admin/users", "/admin/devices"],
        ),
    ],
)
async def test_home_per_role(
    client: Client, world: World, username: str, expected: list[str], nav: list[str]
) -> None:
    await sign_in(client, username)
    html = await (await client.get("/")).text()
    for text in expected:
        assert text in html
    navs = re.findall(r'<nav class="mainnav".*?</nav>', html, re.S)
    assert len(navs) == (0 if username == "kiosk" else 1)  # a kiosk's screen has no way out
    links = set(navs[0].split('"')) if navs else set()
    for href in [
        "/patients",
        "/reports",
        "/worklist",
        "/admin/organisations",
        "/admin/users",
        "/admin/devices",
    ]:
        assert (href in links) == (href in nav), href
    assert ('class="kiosk' in html) == (username == "kiosk")


async def test_gp_home_shows_only_own_clinic(client: Client, world: World) -> None:
    await sign_in(client, "gp-b")
    html = await (await client.get("/")).text()
    assert "BROWN, Bella" in html
    assert "Able" not in html
    assert "ABLE" not in html


async def test_admin_home_counts(client: Client, world: World) -> None:
    await sign_in(client, "admin")
    html = await (await client.get("/")).text()
    counts = re.findall(r'<span class="tile-count">(\d+)</span>', html)
    assert counts == ["4", "5", "1"]  # organisations, people, kiosk devices


async def test_pages_have_no_inline_script_or_style(client: Client, world: World) -> None:
    pages = {
        "gp-a": ["/", "/patients", "/patients/new", f"/patients/{world.patients['alice']}"],
        "admin": ["/", "/admin/organisations", "/admin/users", "/admin/devices"],
    }
    for username, paths in pages.items():
        client.session.cookie_jar.clear()
        await sign_in(client, username)
        for path in paths:
            response = await client.get(path)
            assert response.status == 200, path
            html = await response.text()
            assert csrf_meta(html)
            assert not re.search(r"\sstyle=", html), path
            assert not re.search(r"\son[a-z]+=", html), path
            assert not re.search(r"<script(?![^>]*\ssrc=)", html), path
            assert 'id="idle-warning"' in html
            assert re.search(r'data-idle-minutes="\d+" id="session-info"', html)


async def test_static_assets_are_served(client: Client, world: World) -> None:
    html = await (await client.get("/login")).text()
    for name in ("core/base.css", "shell/shell.css"):
        href = re.search(rf'"(/static/{name}\?v=[^"]+)"', html)
        assert href is not None
        response = await client.get(href.group(1))
        assert response.status == 200
        assert len(await response.read()) > 1000
    # The one module entry is small; the modules it imports (transitively) are the code.
    entry = re.search(r'<script type="module" src="(/static/core/main\.mjs\?v=[^"]+)">', html)
    assert entry is not None
    pending, seen, size = [entry.group(1)], set(), 0
    while pending:
        url = pending.pop()
        response = await client.get(url)
        assert response.status == 200, url
        assert response.content_type == "text/javascript", url
        text = await response.text()
        size += len(text)
        text = re.sub(r"/\*.*?\*/|^\s*//.*$", "", text, flags=re.S | re.M)
        base = url.split("?")[0].rsplit("/", 1)[0]
        for found in re.findall(r'(?:from|import)\s*\(?\s*"(\.{1,2}/[^"]+)"', text):
            target = posixpath.normpath(f"{base}/{found}")
            if target not in seen:
                seen.add(target)
                pending.append(target)
    assert len(seen) >= 5
    assert size > 1000


async def test_a_signed_in_404_keeps_the_navigation(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    response = await client.get("/no/such/page")
    assert response.status == 404
    html = await response.text()
    assert 'aria-label="Main"' in html  # the navigation, not a signed-out page
    assert "Sign out" in html
    client.session.cookie_jar.clear()
    anonymous = await (await client.get("/no/such/page")).text()
    assert "Sign out" not in anonymous
