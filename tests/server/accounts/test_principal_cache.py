"""The per-process principal cache: one load per token at a time, bounded life, invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from server import keys
from server.accounts.changes import CHANNEL
from server.accounts.models import User
from server.accounts.principal_cache import Grant, PrincipalCache
from server.app import create_app
from server.db import utcnow
from server.identity import OrgKind, Principal, Role
from server.settings import Settings
from tests.support import World

PRINCIPAL = Principal(
    user_id=7,
    username="gp",
    display_name="GP",
    role=Role.GP,
    org_id=1,
    org_name="c",
    org_kind=OrgKind.CLINIC,
    specialties=(),
    via="token",
)


async def test_concurrent_misses_load_once() -> None:
    cache = PrincipalCache()
    loads = 0

    async def load() -> Grant:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return Grant(PRINCIPAL, None)

    found = await asyncio.gather(*(cache.get("h", load) for _ in range(50)))
    assert found == [PRINCIPAL] * 50
    assert loads == 1
    assert await cache.get("h", load) == PRINCIPAL
    assert loads == 1


async def test_failed_loads_are_not_kept() -> None:
    cache = PrincipalCache()
    calls = 0

    async def load() -> Grant:
        nonlocal calls
        calls += 1
        raise LookupError("revoked")

    for _ in range(2):
        with pytest.raises(LookupError):
            await cache.get("h", load)
    assert calls == 2


async def test_entries_end_with_ttl_token_expiry_and_drop() -> None:
    loads = 0

    def loader(expires_in: timedelta | None) -> Callable[[], Awaitable[Grant]]:
        async def load() -> Grant:
            nonlocal loads
            loads += 1
            return Grant(PRINCIPAL, utcnow() + expires_in if expires_in is not None else None)

        return load

    short = PrincipalCache(ttl=0.0)
    await short.get("h", loader(None))
    await short.get("h", loader(None))
    assert loads == 2

    cache = PrincipalCache()
    await cache.get("e", loader(timedelta(seconds=-1)))
    await cache.get("e", loader(timedelta(seconds=-1)))
    assert loads == 4
    await cache.get("k", loader(None))
    cache.drop_user(PRINCIPAL.user_id)
    await cache.get("k", loader(None))
    assert loads == 6


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_change_in_one_process_reaches_another(settings: Settings, world: World) -> None:
    """Several server processes share events only through PostgreSQL."""
    async with (
        TestClient(TestServer(create_app(settings))) as first,
        TestClient(TestServer(create_app(settings))) as second,
    ):
        assert (await second.get("/api/v1/me", headers=world.auth("gp-b"))).status == 200
        async with first.app[keys.SESSIONMAKER]() as session, session.begin():
            await session.execute(
                update(User).where(User.id == world.users["gp-b"]).values(is_active=False)
            )
        await first.app[keys.EVENT_BUS].publish(
            CHANNEL, {"type": "user.changed", "user_id": world.users["gp-b"]}
        )
        for _ in range(100):
            if (await second.get("/api/v1/me", headers=world.auth("gp-b"))).status == 401:
                break
            await asyncio.sleep(0.05)
        response = await second.get("/api/v1/me", headers=world.auth("gp-b"))
        assert response.status == 401
        assert (await response.json())["error"]["message"] == "Account is disabled."
