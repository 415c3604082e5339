"""Sign-in, sessions, tokens and the /me endpoint, over HTTP on both databases."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support import PASSWORD, World

Client = TestClient[web.Request, web.Application]


async def test_me_with_bearer_token(client: Client, world: World) -> None:
    response = await client.get("/api/v1/me", headers=world.auth("cardio"))
    assert response.status == 200
    body = await response.json()
    assert body["username"] == "cardio"
    assert body["role"] == "specialist"
    assert body["specialties"] == ["cardiology"]
    assert body["organisation"]["name"] == "hospital"


async def test_login_sets_session_cookie_and_me_works(client: Client, world: World) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "gp-a", "password": PASSWORD}
    )
    assert response.status == 200
    cookie = response.cookies["doorstep_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    me = await client.get("/api/v1/me")
    assert (await me.json())["username"] == "gp-a"
