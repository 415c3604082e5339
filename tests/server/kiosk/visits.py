"""Helpers of the kiosk tests: a second kiosk at the corner, check-in, vitals, the queue."""

from __future__ import annotations

from typing import Any

from server import keys
from server.accounts import service as accounts
from server.identity import Role
from tests.support import Client, World

PHONE = "138 0013 8000"
BIRTH = "1948-03-09"


async def second_kiosk(client: Client, world: World, username: str = "kiosk2") -> None:
    """Another kiosk device at the same corner (its token in world.tokens)."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        org = await accounts.get_org_by_name(session=session, name="corner")
        user = await accounts.add_user(
            session=session, username=username, org=org, role=Role.KIOSK, password=None
        )
        world.tokens[username] = (await accounts.create_token(session=session, user=user)).token
        world.users[username] = user.id


async def check_in(
    client: Client, world: World, *, kiosk: str = "kiosk", expect: int = 201, **fields: Any
) -> Any:
    """POST a check-in (a phone number and birth date unless told); its JSON."""
    body: dict[str, Any] = {"birth_date": BIRTH, "consent": True, "language": "en"}
    if "id_number" not in fields:
        body["phone"] = PHONE
    body.update(fields)
    response = await client.post("/api/v1/kiosk/visits", json=body, headers=world.auth(kiosk))
    assert response.status == expect, await response.text()
    return await response.json()


async def vitals(
    client: Client, world: World, visit: int, *, kiosk: str = "kiosk", expect: int = 200, **v: Any
) -> Any:
    """POST vitals of a visit; the JSON."""
    response = await client.post(
        f"/api/v1/kiosk/visits/{visit}/vitals", json=v, headers=world.auth(kiosk)
    )
    assert response.status == expect, await response.text()
    return await response.json()


async def queue(
    client: Client,
    world: World,
    visit: int,
    *,
    kiosk: str = "kiosk",
    method: str = "POST",
    specialty: str | None = None,
) -> tuple[int, Any]:
    """Join (POST), look at (GET) or leave (DELETE) the queue; (status, JSON or None)."""
    response = await client.request(
        method,
        f"/api/v1/kiosk/visits/{visit}/queue",
        headers=world.auth(kiosk),
        json={"specialty": specialty} if specialty else None,
    )
    body = await response.json() if response.status != 204 else None
    return response.status, body
