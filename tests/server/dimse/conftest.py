"""A running application with its DIMSE SCP on a free port, and the clinics' AE titles."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from server import keys
from server.accounts.models import Organisation
from server.settings import Settings
from tests.server.dimse.peers import AE_TITLES, Listener
from tests.support import World, free_port


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with the DIMSE listener on a free port."""
    return settings.model_copy(update={"dicom_port": free_port()})


@pytest.fixture
async def listener(
    client: TestClient[web.Request, web.Application], world: World, settings: Settings
) -> Listener:
    """The started application's DIMSE address; clinic-a and clinic-b have AE titles."""
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        for org, ae_title in AE_TITLES.items():
            await session.execute(
                update(Organisation)
                .where(Organisation.id == world.orgs[org])
                .values(ae_title=ae_title)
            )
    return Listener(client.app, settings.host, settings.dicom_port, settings.ae_title)
