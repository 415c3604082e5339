"""Kiosk enrolment: an administrator's one-time code, exchanged on the kiosk for the device
credential (the kiosk cookie), which authenticates like a bearer token of the device, is
CSRF-checked like a session, is attributed to the device, and stops at once when revoked.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from server import keys
from server.access import allow
from server.accounts.middleware import KIOSK_COOKIE
from server.accounts.models import ApiToken, User
from server.app import create_app
from server.context import db, recorder
from server.db import Transaction, transaction, utcnow
from server.identity import Actor, Role
from server.kiosk import enrolment
from server.kiosk.models import KioskEnrolment
from server.settings import Settings
from tests.forms import csrf_meta, post_form, sign_in
from tests.support import Client, World, audit_events

CODE = re.compile(r"^\d{4}-\d{4}-\d{4}$")
ACTION = "/api/v1/test/kiosk-action"
_ENROL_CSRF = re.compile(r'name="enrol_csrf" value="([^"]+)"')


@allow(Role.KIOSK)
async def _kiosk_action(request: web.Request) -> web.StreamResponse:
    """A kiosk's audited write, as the kiosk's own API will have (for attribution and CSRF)."""
    async with db(request) as session:
        await recorder(request).record(session, action="kiosk.test", object_type="test")
    return web.json_response({"ok": True})


@pytest.fixture
async def kiosk_client(settings: Settings) -> AsyncIterator[Client]:
    """The application with one extra kiosk-only audited POST route."""
    app = create_app(settings)
    app.router.add_post(ACTION, _kiosk_action)
    async with TestClient(TestServer(app)) as client:
        yield client


async def _code(client: Client, world: World, device: str = "kiosk") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/kiosk/enrolments", json={"device": device}, headers=world.auth("admin")
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _open(client: Client, code: str, **headers: str) -> tuple[int, str, str]:
    """GET /kiosk?enrol=<code> as a fresh browser: status, Location, the kiosk cookie."""
    client.session.cookie_jar.clear()
    response = await client.get(
        "/kiosk", params={"enrol": code}, headers=headers, allow_redirects=False
    )
    await response.read()
    morsel = response.cookies.get(KIOSK_COOKIE)
    client.session.cookie_jar.clear()
    if morsel is not None and morsel.value:
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert morsel["path"] == "/"
        assert morsel["max-age"] == str(365 * 24 * 3600)
        assert not morsel["secure"]  # plain HTTP in the tests
    value = morsel.value if morsel is not None else ""
    return response.status, response.headers.get("Location", ""), value


async def _enrolled(client: Client, world: World) -> str:
    """A kiosk cookie of the seeded kiosk device."""
    status, location, cookie = await _open(client, (await _code(client, world))["code"])
    assert (status, location) == (303, "/kiosk")
    assert cookie.startswith("dst_")
    return cookie


def _jar(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{KIOSK_COOKIE}={cookie}"}


async def _me(client: Client, cookie: str) -> int:
    client.session.cookie_jar.clear()
    response = await client.get("/api/v1/me", headers=_jar(cookie))
    await response.read()
    return response.status


# Creating a code ------------------------------------------------------------------------


async def test_an_admin_creates_a_one_time_code(client: Client, world: World) -> None:
    before = utcnow()
    body = await _code(client, world)
    assert set(body) == {"code", "expires_at"}
    assert CODE.fullmatch(body["code"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.tzinfo is not None
    assert before + timedelta(minutes=14) < expires <= utcnow() + timedelta(minutes=15)
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(select(KioskEnrolment))
    assert row is not None
    assert row.device_id == world.users["kiosk"]
    assert row.created_by == world.users["admin"]
    assert row.code_digest == enrolment.digest(body["code"].replace("-", ""))
    assert row.used_at is None
    (event,) = await audit_events(client.app, "kiosk.enrolment.create")
    assert (event.actor, event.object_id) == ("admin", str(world.users["kiosk"]))
    assert body["code"].replace("-", "") not in event.details
    assert body["code"] not in event.details


async def test_the_lifetime_is_a_setting(settings: Settings, world: World) -> None:
    short = settings.model_copy(update={"kiosk_enrolment_minutes": 2})
    async with TestClient(TestServer(create_app(short))) as client:
        body = await _code(client, world)
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires <= utcnow() + timedelta(minutes=2)
    assert expires > utcnow() + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("caller", "device", "status"),
    [
        ("gp-a", "kiosk", 403),
        ("cardio", "kiosk", 403),
        ("kiosk", "kiosk", 403),
        ("admin", "no-such-kiosk", 404),
        ("admin", "gp-a", 422),
    ],
)
async def test_only_admins_and_only_for_kiosks(
    client: Client, world: World, caller: str, device: str, status: int
) -> None:
    response = await client.post(
        "/api/v1/kiosk/enrolments", json={"device": device}, headers=world.auth(caller)
    )
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] in ("forbidden", "not_found", "invalid")
    async with client.app[keys.SESSIONMAKER]() as session:
        assert await session.scalar(select(KioskEnrolment)) is None


async def test_a_disabled_kiosk_gets_no_code(client: Client, world: World) -> None:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(User).where(User.id == world.users["kiosk"]).values(is_active=False)
        )
    response = await client.post(
        "/api/v1/kiosk/enrolments", json={"device": "kiosk"}, headers=world.auth("admin")
    )
    assert response.status == 422
    assert "disabled" in (await response.json())["error"]["message"]


async def test_the_body_is_checked(client: Client, world: World) -> None:
    for body in ({}, {"device": ""}, {"device": "kiosk", "extra": 1}):
        response = await client.post(
            "/api/v1/kiosk/enrolments", json=body, headers=world.auth("admin")
        )
        assert response.status == 422, body


def test_codes_are_twelve_random_digits_and_typing_is_forgiving() -> None:
    codes = {enrolment.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(CODE.fullmatch(c) for c in codes)
    assert enrolment.normalise("4821-0937-5512") == "482109375512"
    assert enrolment.normalise(" 4821 0937 5512 ") == "482109375512"
    assert enrolment.normalise("482109375512") == "482109375512"
    assert enrolment.normalise("4821\u20130937\u20135512") == "482109375512"  # en dashes
    for wrong in ("", "4821-0937-551", "4821-0937-55123", "4821-0937-551x", "٤٨٢١٠٩٣٧٥٥١٢"):
        assert enrolment.normalise(wrong) is None, wrong


# Redeeming it --------------------------------------------------------------------------


async def test_opening_the_link_sets_the_cookie_and_leaves_the_address(
    client: Client, world: World
) -> None:
    cookie = await _enrolled(client, world)
    client.session.cookie_jar.clear()
    me = await client.get("/api/v1/me", headers=_jar(cookie))
    assert me.status == 200
    assert (await me.json())["username"] == "kiosk"
    page = await client.get("/kiosk", headers=_jar(cookie), allow_redirects=False)
    assert page.status == 200
    html = await page.text()
    assert "Welcome to the health point" in html  # the kiosk app, not the enrolment screen
    assert 'class="kiosk' in html
    home = await client.get("/", headers=_jar(cookie), allow_redirects=False)
    assert (home.status, home.headers["Location"]) == (303, "/kiosk")
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(select(KioskEnrolment))
        assert row is not None
        assert row.used_at is not None
        assert row.used_from == "127.0.0.1"
        token = await session.get(ApiToken, row.token_id)
    assert token is not None
    assert token.user_id == world.users["kiosk"]
    assert token.label.startswith("kiosk cookie ")
    assert token.expires_at is not None
    assert token.expires_at > utcnow() + timedelta(days=364)
    (event,) = await audit_events(client.app, "kiosk.enrol")
    assert (event.actor, event.actor_id) == ("kiosk", world.users["kiosk"])
    assert event.outcome == "success"
    assert event.client_addr == "127.0.0.1"
    assert event.org_id == world.orgs["corner"]
    (created,) = await audit_events(client.app, "token.create")
    assert created.actor == "kiosk"


async def test_a_cross_site_visit_moves_on_by_itself(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    client.session.cookie_jar.clear()
    response = await client.get(
        "/kiosk",
        params={"enrol": code},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert response.status == 200
    assert response.headers["Refresh"] == "0; url=/kiosk"
    assert response.cookies[KIOSK_COOKIE].value.startswith("dst_")
    assert code not in await response.text()


async def test_requests_with_the_cookie_are_the_devices(kiosk_client: Client, world: World) -> None:
    client = kiosk_client
    cookie = await _enrolled(client, world)
    client.session.cookie_jar.clear()
    page = await client.get("/kiosk", headers=_jar(cookie))
    csrf = csrf_meta(await page.text())
    assert len(csrf) == 64
    done = await client.post(ACTION, headers={**_jar(cookie), "X-CSRF-Token": csrf})
    assert done.status == 200, await done.text()
    (event,) = await audit_events(client.app, "kiosk.test")
    assert (event.actor, event.actor_id) == ("kiosk", world.users["kiosk"])
    assert event.org_id == world.orgs["corner"]
    assert event.client_addr == "127.0.0.1"


async def test_cookie_requests_need_the_csrf_token(kiosk_client: Client, world: World) -> None:
    client = kiosk_client
    cookie = await _enrolled(client, world)
    client.session.cookie_jar.clear()
    csrf = csrf_meta(await (await client.get("/kiosk", headers=_jar(cookie))).text())
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": csrf[:-1] + "0"}):
        if headers.get("X-CSRF-Token") == csrf:
            continue
        refused = await client.post(ACTION, headers={**_jar(cookie), **headers})
        assert refused.status == 403, headers
        assert "CSRF" in (await refused.json())["error"]["message"]
    foreign = await client.post(
        ACTION,
        headers={**_jar(cookie), "X-CSRF-Token": csrf, "Origin": "http://evil.example"},
    )
    assert foreign.status == 403
    assert await audit_events(client.app, "kiosk.test") == []
    # The same token as a bearer token needs no CSRF token (as every bearer token).
    bearer = await client.post(ACTION, headers={"Authorization": f"Bearer {cookie}"})
    assert bearer.status == 200
    ok = await client.post(ACTION, headers={**_jar(cookie), "X-CSRF-Token": csrf})
    assert ok.status == 200
    # Another kiosk cookie has another CSRF token.
    other = await _enrolled(client, world)
    client.session.cookie_jar.clear()
    crossed = await client.post(ACTION, headers={**_jar(other), "X-CSRF-Token": csrf})
    assert crossed.status == 403


async def test_the_cookie_is_only_for_kiosk_devices(client: Client, world: World) -> None:
    assert await _me(client, world.tokens["gp-a"]) == 401
    assert await _me(client, world.tokens["kiosk"]) == 200  # the device's own token
    assert await _me(client, "dst_not-a-token") == 401
    # A stale kiosk cookie on /kiosk: the enrolment screen, and the cookie is cleared.
    client.session.cookie_jar.clear()
    page = await client.get("/kiosk", headers=_jar("dst_not-a-token"), allow_redirects=False)
    assert page.status == 200
    assert 'action="/kiosk/enrol"' in await page.text()
    assert page.cookies[KIOSK_COOKIE].value == ""


async def test_a_session_cookie_wins_over_the_kiosk_cookie(client: Client, world: World) -> None:
    cookie = await _enrolled(client, world)
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    client.session.cookie_jar.update_cookies({KIOSK_COOKIE: cookie})
    me = await client.get("/api/v1/me")
    assert (await me.json())["username"] == "gp-a"


async def test_a_code_works_once(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    assert (await _open(client, code))[:2] == (303, "/kiosk")
    status, location, cookie = await _open(client, code)
    assert (status, location, cookie) == (303, "/kiosk?problem=used", "")
    client.session.cookie_jar.clear()
    page = await client.get(location)
    assert "This code has been used already. Ask the administrator for a new one." in (
        await page.text()
    )
    trail = [(e.actor, e.outcome) for e in await audit_events(client.app, "kiosk.enrol")]
    assert trail == [("kiosk", "success"), ("anonymous", "denied")]
    denied = (await audit_events(client.app, "kiosk.enrol"))[-1]
    assert '"reason":"used"' in denied.details


async def test_two_redemptions_at_once_one_wins(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    results = await asyncio.gather(*(_redeem_in(client, code) for _ in range(4)))
    assert sorted(results) == ["ok", "used", "used", "used"]
    async with client.app[keys.SESSIONMAKER]() as session:
        tokens = (
            await session.scalars(select(ApiToken).where(ApiToken.label.like("kiosk cookie%")))
        ).all()
    assert len(tokens) == 1


async def _redeem_in(client: Client, code: str) -> str:
    app = client.app
    try:
        async with db_session(app) as session:
            await enrolment.redeem(
                session=session,
                audit=app[keys.AUDIT].recorder(_anonymous()),
                code=code,
                client_addr="192.0.2.1",
            )
    except enrolment.EnrolmentRefused as refused:
        return refused.reason
    return "ok"


def db_session(app: web.Application) -> Transaction:
    """A transaction as a request opens it (with the app's write group)."""
    return transaction(app[keys.SESSIONMAKER], app[keys.WRITE_GROUP])


def _anonymous() -> Actor:
    return Actor(user_id=None, username="anonymous", org_id=None, client_addr="192.0.2.1")


async def test_an_expired_code_is_refused(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(KioskEnrolment).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    status, location, cookie = await _open(client, code)
    assert (status, location, cookie) == (303, "/kiosk?problem=expired", "")
    page = await client.get(location)
    assert "This code has expired. Ask the administrator for a new one." in await page.text()
    (event,) = await audit_events(client.app, "kiosk.enrol")
    assert event.outcome == "denied"


async def test_a_code_of_a_disabled_device_is_refused(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(
        client, "/admin/users/kiosk/disable", csrf, {"back": "/admin/devices"}
    )
    assert status == 303
    assert (await _open(client, code))[:2] == (303, "/kiosk?problem=disabled")


async def _typed(client: Client, code: str) -> tuple[int, str, str, str]:
    """Type a code on the enrolment screen as a browser: status, Location, cookie, page."""
    client.session.cookie_jar.clear()
    screen = await client.get("/kiosk")
    assert screen.status == 200
    html = await screen.text()
    assert 'data-module="enrol-keypad"' in html
    found = _ENROL_CSRF.search(html)
    assert found is not None
    response = await client.post(
        "/kiosk/enrol",
        data={"code": code, "enrol_csrf": found.group(1)},
        allow_redirects=False,
    )
    text = await response.text()
    morsel = response.cookies.get(KIOSK_COOKIE)
    client.session.cookie_jar.clear()
    return (
        response.status,
        response.headers.get("Location", ""),
        morsel.value if morsel is not None else "",
        text,
    )


@pytest.mark.parametrize("typing", ["{}", "{} ", "{d}", " {s} "])
async def test_a_typed_code_with_spaces_or_dashes_works(
    client: Client, world: World, typing: str
) -> None:
    code = (await _code(client, world))["code"]
    digits = code.replace("-", "")
    typed = typing.format(code, d=digits, s=code.replace("-", " "))
    status, location, cookie, _ = await _typed(client, typed)
    assert (status, location) == (303, "/kiosk")
    assert await _me(client, cookie) == 200


async def test_the_form_needs_its_own_token(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    client.session.cookie_jar.clear()
    response = await client.post("/kiosk/enrol", data={"code": code, "enrol_csrf": "forged"})
    assert response.status == 403
    assert "Type the code again" in await response.text()
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(select(KioskEnrolment))
    assert row is not None
    assert row.used_at is None


async def test_wrong_codes_are_throttled_per_address(client: Client, world: World) -> None:
    code = (await _code(client, world))["code"]
    wrong = "0000-0000-0000" if code != "0000-0000-0000" else "1111-1111-1111"
    for _ in range(5):
        status, _, cookie, html = await _typed(client, wrong)
        assert (status, cookie) == (404, "")
        assert "This code is not right" in html
    status, _, cookie, html = await _typed(client, code)  # even the right code waits now
    assert (status, cookie) == (429, "")
    assert "Too many wrong codes were typed here" in html
    status, location, _ = await _open(client, code)
    assert (status, location) == (303, "/kiosk?problem=throttled")
    outcomes = [
        (e.outcome, '"reason":"throttled"' in e.details)
        for e in await audit_events(client.app, "kiosk.enrol")
    ]
    assert outcomes == [("denied", False)] * 5 + [("denied", True)] * 2
    # Another address is not held up by this one's guesses.
    async with db_session(client.app) as session:
        found = await enrolment.redeem(
            session=session,
            audit=client.app[keys.AUDIT].recorder(_anonymous()),
            code=code,
            client_addr="192.0.2.1",
        )
    assert found.device == "kiosk"


# Stopping a kiosk ----------------------------------------------------------------------


async def _kiosk_token_id(client: Client) -> int:
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(
            select(KioskEnrolment).where(KioskEnrolment.token_id.is_not(None))
        )
    assert row is not None
    assert row.token_id is not None
    return row.token_id


async def test_revoking_the_token_stops_the_kiosk_at_once(client: Client, world: World) -> None:
    cookie = await _enrolled(client, world)
    assert await _me(client, cookie) == 200  # now in this process's principal cache
    token_id = await _kiosk_token_id(client)
    csrf = await sign_in(client, "admin")
    devices = await (await client.get("/admin/devices")).text()
    assert f'action="/admin/tokens/{token_id}/revoke"' in devices
    status, _, location = await post_form(client, f"/admin/tokens/{token_id}/revoke", csrf)
    assert (status, location) == (303, f"/admin/devices?revoked={token_id}")
    assert await _me(client, cookie) == 401
    client.session.cookie_jar.clear()
    page = await client.get("/kiosk", headers=_jar(cookie), allow_redirects=False)
    assert 'action="/kiosk/enrol"' in await page.text()


async def test_disabling_the_device_stops_the_kiosk_at_once(client: Client, world: World) -> None:
    cookie = await _enrolled(client, world)
    assert await _me(client, cookie) == 200
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(
        client, "/admin/users/kiosk/disable", csrf, {"back": "/admin/devices"}
    )
    assert status == 303
    assert await _me(client, cookie) == 401


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_revoking_reaches_every_process(settings: Settings, world: World) -> None:
    """Two server processes share the database and the event bus (PostgreSQL)."""
    async with (
        TestClient(TestServer(create_app(settings))) as first,
        TestClient(TestServer(create_app(settings))) as second,
    ):
        cookie = await _enrolled(first, world)
        assert await _me(second, cookie) == 200  # cached in the second process
        token_id = await _kiosk_token_id(first)
        csrf = await sign_in(first, "admin")
        status, _, _ = await post_form(first, f"/admin/tokens/{token_id}/revoke", csrf)
        assert status == 303
        for _ in range(100):
            if await _me(second, cookie) == 401:
                break
            await asyncio.sleep(0.02)
        assert await _me(second, cookie) == 401
        assert await _me(first, cookie) == 401


# The admin's page ----------------------------------------------------------------------


async def test_the_devices_page_creates_a_code_with_link_and_qr(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "admin")
    devices = await (await client.get("/admin/devices")).text()
    assert 'action="/admin/devices/kiosk/enrolment"' in devices
    assert "Create an enrolment code" in devices
    status, html, _ = await post_form(client, "/admin/devices/kiosk/enrolment", csrf)
    assert status == 201, html
    found = re.search(r'<code id="enrolment-code">(\d{4}-\d{4}-\d{4})</code>', html)
    assert found is not None
    code = found.group(1)
    origin = f"http://{client.server.host}:{client.server.port}"
    assert f"{origin}/kiosk?enrol={code}" in html
    assert re.search(r'<svg xmlns="http://www.w3.org/2000/svg"[^>]*class="enrol-qr"', html)
    assert "<path" in html
    assert " style=" not in html
    # The code on the page works (once) on a kiosk.
    status, location, cookie = await _open(client, code)
    assert (status, location) == (303, "/kiosk")
    assert await _me(client, cookie) == 200


async def test_the_link_uses_the_public_url(settings: Settings, world: World) -> None:
    public = settings.model_copy(update={"public_url": "https://doorstep.example.org/"})
    async with TestClient(TestServer(create_app(public))) as client:
        csrf = await sign_in(client, "admin")
        status, html, _ = await post_form(client, "/admin/devices/kiosk/enrolment", csrf)
    assert status == 201
    assert re.search(r"https://doorstep\.example\.org/kiosk\?enrol=\d{4}-\d{4}-\d{4}", html)


async def test_the_devices_page_refuses_non_kiosks(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, html, _ = await post_form(client, "/admin/devices/gp-a/enrolment", csrf)
    assert status == 422
    assert "not a kiosk" in html
    status, _, _ = await post_form(client, "/admin/devices/kiosk/enrolment", None)
    assert status == 403  # no CSRF token
