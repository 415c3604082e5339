"""Helpers of the consult tests: specialists on duty, a consult asked for, offers run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from server import keys
from server.accounts.models import User
from server.consults.models import Consult
from tests.server.reading.people import second_cardiologist
from tests.support import Client, World


async def on_duty(client: Client, world: World, *users: str) -> None:
    """Put these seeded (or added) users on duty."""
    for user in users:
        response = await client.put(
            "/api/v1/duty", json={"on_duty": True}, headers=world.auth(user)
        )
        assert response.status == 200, await response.text()


async def two_cardiologists_on_duty(client: Client, world: World) -> None:
    """cardio and a second cardiologist, cardio2 (token in world.tokens), both on duty."""
    world.tokens["cardio2"] = await second_cardiologist(client, world)
    await on_duty(client, world, "cardio", "cardio2")


async def asked(
    client: Client, world: World, *, user: str = "gp-a", patient: str = "alice", **fields: Any
) -> dict[str, Any]:
    """POST a consult request (specialty cardiology unless told); its JSON (201 asserted)."""
    body: dict[str, Any] = {"patient_id": world.patients[patient], "reason": "Chest pain"}
    if "specialist" not in fields:
        body["specialty"] = "cardiology"
    body.update(fields)
    response = await client.post("/api/v1/consults", json=body, headers=world.auth(user))
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def run_out(client: Client, consult_id: int) -> None:
    """Make the current offer (or the wait for someone on duty) of a consult lapse now."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(Consult)
            .where(Consult.id == consult_id)
            .values(offered_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def consult(client: Client, world: World, consult_id: int, user: str = "gp-a") -> Any:
    """GET one consult as a user (200 asserted)."""
    response = await client.get(f"/api/v1/consults/{consult_id}", headers=world.auth(user))
    assert response.status == 200, await response.text()
    return await response.json()


async def act(client: Client, world: World, consult_id: int, action: str, user: str) -> Any:
    """POST accept/decline/end as a user; (status, JSON)."""
    response = await client.post(
        f"/api/v1/consults/{consult_id}/{action}", headers=world.auth(user)
    )
    return response.status, await response.json()


async def user_id(client: Client, username: str) -> int:
    """The id of a user."""
    async with client.app[keys.SESSIONMAKER]() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found
