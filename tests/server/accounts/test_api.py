"""Sign-in, sessions, tokens, throttling and CSRF, over HTTP on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from server import keys
from server.accounts.models import ApiToken, User, WebSession
from server.db import utcnow
from tests.support import PASSWORD, Client, World, audit_events


async def login(client: Client, username: str, password: str = PASSWORD) -> str:
    """Sign in through the API and return the CSRF token."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["csrf_token"]
    return token


async def test_me_with_bearer_token(client: Client, world: World) -> None:
    response = await client.get("/api/v1/me", headers=world.auth("cardio"))
    assert response.status == 200
    body = await response.json()
    assert body["username"] == "cardio"
    assert body["role"] == "specialist"
    assert body["specialties"] == ["cardiology"]
    assert body["organisation"] == {
        "id": world.orgs["hospital"],
        "name": "hospital",
        "kind": "hospital",
    }


async def test_login_sets_session_cookie_and_is_audited(client: Client, world: World) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "gp-a", "password": PASSWORD}
    )
    assert response.status == 200
    cookie = response.cookies["doorstep_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    me = await client.get("/api/v1/me")
    assert (await me.json())["username"] == "gp-a"
    [event] = await audit_events(client.app, "auth.login")
    assert (event.actor, event.outcome, event.client_addr) == ("gp-a", "success", "127.0.0.1")


async def test_wrong_password_and_unknown_user_get_the_same_401(
    client: Client, world: World
) -> None:
    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "gp-a", "password": "nope-nope-nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "ghost", "password": "nope"}
    )
    for response in (wrong, unknown):
        assert response.status == 401
        body = await response.json()
        assert body == {
            "error": {
                "code": "not_authenticated",
                "message": "Wrong username or password.",
                "details": None,
            }
        }
    assert "doorstep_session" not in wrong.cookies
    events = await audit_events(client.app, "auth.login")
    assert [(e.object_id, e.outcome) for e in events] == [("gp-a", "failure"), ("ghost", "failure")]


async def test_login_is_throttled_after_repeated_failures(client: Client, world: World) -> None:
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "gp-b", "password": "bad"}
        )
        assert response.status == 401
    throttled = await client.post(
        "/api/v1/auth/login", json={"username": "gp-b", "password": PASSWORD}
    )
    assert throttled.status == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert (await throttled.json())["error"]["code"] == "too_many_requests"
    # Another account from the same address is not locked out by gp-b's failures.
    await login(client, "gp-a")
    outcomes = [
        e.outcome for e in await audit_events(client.app, "auth.login") if e.object_id == "gp-b"
    ]
    assert outcomes == ["failure"] * 5 + ["denied"]


async def test_expired_revoked_and_disabled_tokens_are_refused(
    client: Client, world: World
) -> None:
    maker = client.app[keys.SESSIONMAKER]
    cases = {
        "gp-a": update(ApiToken)
        .where(ApiToken.user_id == world.users["gp-a"])
        .values(expires_at=utcnow() - timedelta(seconds=1)),
        "gp-b": update(ApiToken)
        .where(ApiToken.user_id == world.users["gp-b"])
        .values(revoked_at=utcnow()),
        "radio": update(User).where(User.id == world.users["radio"]).values(is_active=False),
    }
    async with maker() as session, session.begin():
        for statement in cases.values():
            await session.execute(statement)
    messages = {}
    for username in cases:
        response = await client.get("/api/v1/me", headers=world.auth(username))
        assert response.status == 401
        messages[username] = (await response.json())["error"]["message"]
    assert messages == {
        "gp-a": "Bearer token has expired.",
        "gp-b": "Invalid or revoked bearer token.",
        "radio": "Account is disabled.",
    }
    assert (await client.get("/api/v1/me", headers=world.auth("cardio"))).status == 200


async def test_malformed_credentials_are_refused(client: Client, world: World) -> None:
    for header in ("Basic Zm9vOmJhcg==", "Bearer", "Bearer dst_" + "x" * 500, "Bearer not-a-token"):
        response = await client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status == 401, header
        assert (await response.json())["error"]["code"] == "not_authenticated"


async def test_idle_session_is_signed_out(client: Client, world: World) -> None:
    await login(client, "gp-a")
    assert (await client.get("/api/v1/me")).status == 200
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=16))
        )
    response = await client.get("/api/v1/me")
    assert response.status == 401
    async with client.app[keys.SESSIONMAKER]() as session:
        assert (await session.scalars(select(WebSession))).all() == []


async def test_logout_needs_csrf_token_and_ends_the_session(client: Client, world: World) -> None:
    csrf = await login(client, "gp-a")
    refused = await client.post("/api/v1/auth/logout")
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["error"]["message"]
    wrong = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403
    done = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert done.status == 204
    assert (await client.get("/api/v1/me")).status == 401
    assert [e.outcome for e in await audit_events(client.app, "auth.logout")] == ["success"]


async def test_cross_origin_requests_with_a_session_are_refused(
    client: Client, world: World
) -> None:
    await login(client, "gp-a")
    response = await client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
    assert response.status == 403
    same = await client.get("/api/v1/me", headers={"Origin": f"http://{client.host}:{client.port}"})
    assert same.status == 200


async def test_login_body_is_validated(client: Client, world: World) -> None:
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "gp-a", "password": PASSWORD, "admin": True}
    )
    assert unknown.status == 422
    body = await unknown.json()
    assert body["error"]["details"] == [
        {"field": "admin", "message": "Extra inputs are not permitted"}
    ]
    missing = await client.post("/api/v1/auth/login", json={"username": "gp-a"})
    assert (await missing.json())["error"]["details"][0]["field"] == "password"


async def test_a_disabled_account_is_told_so_only_with_the_right_password(
    client: Client, world: World
) -> None:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(User).where(User.id == world.users["radio"]).values(is_active=False)
        )
    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "radio", "password": "nope-nope-nope"}
    )
    assert wrong.status == 401
    assert (await wrong.json())["error"]["message"] == "Wrong username or password."
    right = await client.post(
        "/api/v1/auth/login", json={"username": "radio", "password": PASSWORD}
    )
    assert right.status == 403
    error = (await right.json())["error"]
    assert error["code"] == "account_disabled"
    assert error["message"] == "This account is disabled; ask your administrator."
    assert "doorstep_session" not in right.cookies
    assert (await client.get("/api/v1/me")).status == 401
    outcomes = [(e.object_id, e.outcome) for e in await audit_events(client.app, "auth.login")]
    assert outcomes == [("radio", "failure"), (str(world.users["radio"]), "denied")]
