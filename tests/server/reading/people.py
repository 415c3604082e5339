"""More people than the seeded world: a second reader of a specialty."""

from __future__ import annotations

from server import keys
from server.accounts import service as accounts
from server.identity import Role
from tests.support import PASSWORD, Client, World


async def second_cardiologist(client: Client, world: World, username: str = "cardio2") -> str:
    """Add another cardiologist at the hospital; their bearer token."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        org = await accounts.get_org_by_name(session=session, name="hospital")
        user = await accounts.add_user(
            session=session,
            username=username,
            org=org,
            role=Role.SPECIALIST,
            password=PASSWORD,
            specialties=("cardiology",),
        )
        return (await accounts.create_token(session=session, user=user)).token
