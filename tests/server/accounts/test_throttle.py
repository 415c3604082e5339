"""Sign-in throttling by (username, address), trusted proxies, growing delays, admin unlock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import ip_network

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from server import keys
from server.accounts.models import LoginFailure
from server.app import create_app
from server.db import transaction, utcnow
from server.settings import Settings
from tests.forms import post_form, sign_in
from tests.support import PASSWORD, Client, World, audit_events

ATTACKER = "203.0.113.5"
NURSE_STATION = "198.51.100.7"


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[Client]:
    """The app behind a trusted reverse proxy on 127.0.0.1 (which the test client is)."""
    behind = settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    async with TestClient(TestServer(create_app(behind))) as client:
        yield client


async def _login(client: Client, password: str, via: str, username: str = "gp-a") -> int:
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": f"10.9.9.9, {via}"},  # the proxy appended `via`
    )
    await response.read()
    return response.status


async def _age_failures(client: Client, seconds: float) -> None:
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        await session.execute(update(LoginFailure).values(at=utcnow() - timedelta(seconds=seconds)))


async def test_a_guesser_elsewhere_does_not_lock_out_the_right_password(
    proxied: Client, world: World
) -> None:
    for _ in range(8):
        assert await _login(proxied, "wrong", ATTACKER) in (401, 429)
    assert await _login(proxied, "wrong", ATTACKER) == 429
    assert await _login(proxied, PASSWORD, NURSE_STATION) == 200
    events = await audit_events(proxied.app, "auth.login")
    assert {e.client_addr for e in events} == {ATTACKER, NURSE_STATION}


async def test_delays_grow_with_each_failure_after_the_limit(proxied: Client, world: World) -> None:
    for _ in range(5):
        assert await _login(proxied, "wrong", ATTACKER) == 401
    response = await proxied.post(
        "/api/v1/auth/login",
        json={"username": "gp-a", "password": PASSWORD},
        headers={"X-Forwarded-For": ATTACKER},
    )
    assert response.status == 429
    first_wait = int(response.headers["Retry-After"])
    assert 25 <= first_wait <= 30
    await _age_failures(proxied, 31)  # the wait is over: one more attempt is heard
    assert await _login(proxied, "wrong", ATTACKER) == 401
    response = await proxied.post(
        "/api/v1/auth/login",
        json={"username": "gp-a", "password": "wrong"},
        headers={"X-Forwarded-For": ATTACKER},
    )
    assert response.status == 429
    assert 55 <= int(response.headers["Retry-After"]) <= 60  # doubled


async def test_forwarded_for_is_ignored_without_a_trusted_proxy(
    client: Client, world: World
) -> None:
    for _ in range(5):
        assert await _login(client, "wrong", ATTACKER) == 401
    # Without DOORSTEP_TRUSTED_PROXIES the header is the client's own claim: not believed.
    assert await _login(client, PASSWORD, NURSE_STATION) == 429
    events = await audit_events(client.app, "auth.login")
    assert {e.client_addr for e in events} == {"127.0.0.1"}


async def test_an_administrator_unlocks_a_user(proxied: Client, world: World) -> None:
    for _ in range(5):
        assert await _login(proxied, "wrong", ATTACKER, username="gp-b") == 401
    assert await _login(proxied, PASSWORD, ATTACKER, username="gp-b") == 429
    csrf = await sign_in(proxied, "admin")
    users = await (await proxied.get("/admin/users")).text()
    assert "Sign-in paused" in users
    assert 'action="/admin/users/gp-b/unlock"' in users
    status, _, location = await post_form(proxied, "/admin/users/gp-b/unlock", csrf)
    assert status == 303
    assert "can sign in again" in await (await proxied.get(location)).text()
    assert [e.actor for e in await audit_events(proxied.app, "user.unlock")] == ["admin"]
    proxied.session.cookie_jar.clear()
    assert await _login(proxied, PASSWORD, ATTACKER, username="gp-b") == 200
