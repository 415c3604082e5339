"""One request cannot stall every clinic, and a busy database is a 503, never a 500.

A STOW-RS body of thousands of junk parts is refused as one audit event (or, past
the part limit, as a whole with 413) while another clinic's GP keeps reading
without an error; a database locked past its timeout answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings
from tests.conftest import SECRET, Templates
from tests.server.dicomweb.helpers import failures, index_counts, multipart
from tests.support import Client, World, audit_events

JUNK = b"this is not DICOM"


async def _read_while(client: Client, world: World, running: asyncio.Task[object]) -> list[int]:
    """Clinic B's GP reads patients and studies until the task is done; every status seen."""
    statuses = []
    while not running.done():
        for path in ("/api/v1/patients", "/dicom-web/studies", "/api/v1/me"):
            response = await client.get(path, headers=world.auth("gp-b"))
            await response.read()
            statuses.append(response.status)
    return statuses


async def _hostile_stow(client: Client, world: World, parts: int) -> tuple[int, bytes]:
    body, content_type = multipart([JUNK] * parts)
    response = await client.post(
        "/dicom-web/studies",
        data=body,
        headers={**world.auth("gp-a"), "Content-Type": content_type},
    )
    return response.status, await response.read()


async def test_a_flood_of_junk_parts_is_one_refusal_and_others_keep_reading(
    client: Client, world: World
) -> None:
    parts = 1500
    hostile = asyncio.create_task(_hostile_stow(client, world, parts))
    statuses = await _read_while(client, world, hostile)
    status, body = await hostile
    assert status == 409
    assert len(failures(json.loads(body))) == parts
    assert statuses
    assert set(statuses) == {200}, statuses
    [refusal] = [e for e in await audit_events(client.app, "dicom.store") if e.actor == "gp-a"]
    details = json.loads(refusal.details)
    assert (refusal.outcome, refusal.object_type) == ("failure", "request")
    assert details["refused"] == parts
    assert details["reasons"] == {"not_dicom": parts}
    assert await index_counts(client) == (0, 0, 0)


async def test_more_parts_than_the_limit_are_refused_whole(client: Client, world: World) -> None:
    hostile = asyncio.create_task(_hostile_stow(client, world, 10_000))
    statuses = await _read_while(client, world, hostile)
    status, body = await hostile
    assert status == 413
    assert "send at most 2000 per request" in json.loads(body)["error"]["message"]
    assert set(statuses) == {200}, statuses
    assert await index_counts(client) == (0, 0, 0)


@pytest.fixture
async def sqlite_client(templates: Templates, tmp_path: Path) -> AsyncIterator[tuple[Client, Path]]:
    """The app on a SQLite copy of the seeded world whose writers wait 200 ms for the lock."""
    template, _ = templates.sqlite_template()
    path = tmp_path / "doorstep.db"
    shutil.copyfile(template, path)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}",
        data_dir=tmp_path / "data",
        secret_key=SECRET,
        log_json=False,
        dicom_port=0,
        sqlite_busy_timeout_ms=200,
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, path


async def test_a_locked_database_is_a_503_with_retry_after(
    sqlite_client: tuple[Client, Path], templates: Templates
) -> None:
    client, path = sqlite_client
    world = templates.sqlite_template()[1]
    patient = {"name": "Busy^Bee", "birth_date": "1990-01-01", "sex": "F", "identifier": "Z-1"}
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        response = await client.post("/api/v1/patients", json=patient, headers=world.auth("gp-a"))
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"]["code"] == "unavailable"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    response = await client.post("/api/v1/patients", json=patient, headers=world.auth("gp-a"))
    assert response.status == 201  # nothing was half-written
