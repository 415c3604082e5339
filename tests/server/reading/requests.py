"""Helpers of the reading tests: a stored study and a reading request on it."""

from __future__ import annotations

from typing import Any

from tests.dicom_tools.part10 import bundled
from tests.support import Client, World, store


async def stored_study(
    client: Client, world: World, name: str = "waveform_ecg.dcm", org: str = "clinic-a"
) -> str:
    """Store one of pydicom's files for org; its Study Instance UID."""
    (result,) = await store(client.app, world.orgs[org], [bundled(name).read_bytes()])
    assert result.outcome in ("stored", "duplicate"), result
    assert result.study_uid is not None
    return result.study_uid


async def asked(
    client: Client, world: World, study_uid: str, *, user: str = "gp-a", **fields: Any
) -> dict[str, Any]:
    """POST a reading request; its JSON (201 asserted)."""
    body = {"study_uid": study_uid, "priority": "routine", "question": "Please read", **fields}
    response = await client.post("/api/v1/reading-requests", json=body, headers=world.auth(user))
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result
