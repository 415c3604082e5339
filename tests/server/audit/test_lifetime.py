"""The server logs a signed audit checkpoint at start-up and periodically."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server import keys
from server.app import create_app
from server.audit.checkpoints import Checkpoint
from server.audit.lifetime import log_checkpoint
from server.settings import Settings
from tests.support import World


async def test_the_server_logs_a_checkpoint_that_verifies(
    settings: Settings, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.audit.lifetime")
    async with TestClient(TestServer(create_app(settings))) as client:
        for _ in range(100):
            lines = [r for r in caplog.records if r.getMessage().startswith("audit checkpoint")]
            if lines:
                break
            await asyncio.sleep(0.05)
        assert lines, "no checkpoint logged at start-up"
        logged = lines[0].audit_checkpoint  # type: ignore[attr-defined]
        at_start = Checkpoint.from_json(logged, client.app[keys.AUDIT].secret)
        assert at_start.head_id == at_start.count == 0  # the seeded world has no events yet
        me = await client.get("/api/v1/patients", headers=world.auth("gp-a"))
        assert me.status == 200  # one audited search
        caplog.clear()
        await log_checkpoint(client.app)
        [record] = [r for r in caplog.records if r.getMessage().startswith("audit checkpoint")]
        later = Checkpoint.from_json(record.audit_checkpoint, client.app[keys.AUDIT].secret)  # type: ignore[attr-defined]
    assert (later.count, later.head_id) == (1, 1)
    assert later.at > at_start.at
