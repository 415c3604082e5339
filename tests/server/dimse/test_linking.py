"""A study sent over DIMSE is linked to the registered patient whose identifier it carries."""

from __future__ import annotations

import asyncio

from tests.dicom_tools.part10 import STUDY_UID
from tests.server.archive.test_links import instance, linked
from tests.server.dimse.peers import Listener, c_store
from tests.support import Client, World


async def test_a_study_sent_over_dimse_is_linked(
    listener: Listener, client: Client, world: World
) -> None:
    assert await asyncio.to_thread(c_store, listener, instance()) == 0x0000
    assert await linked(client) == {STUDY_UID: world.patients["alice"]}
