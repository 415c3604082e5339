"""The reading flow up to a signed report, through the API, for the reports tests."""

from __future__ import annotations

from typing import Any

from tests.server.reading.requests import asked, stored_study
from tests.support import PASSWORD, Client, World

DRAFT = {
    "findings": "Sinus rhythm. <script>alert(1)</script> BT /F1 12 Tf (x) Tj ET",
    "impression": "Normal ECG. 王小明 & <b>bold</b>",
    "measurements": {"heart_rate_bpm": 61.1, "qrs_ms": 99, "rhythm": "sinus rhythm"},
}


async def claimed_with_draft(
    client: Client, world: World, study_uid: str | None = None, *, draft: dict[str, Any] = DRAFT
) -> tuple[str, int]:
    """A stored ECG study asked for cardiology, claimed by cardio, with a draft: (study, id)."""
    study = study_uid or await stored_study(client, world)
    request = await asked(client, world, study, specialty="cardiology", priority="stat")
    claim = await client.post(
        f"/api/v1/reading-requests/{request['id']}/claim", headers=world.auth("cardio")
    )
    assert claim.status == 200, await claim.text()
    saved = await client.put(
        f"/api/v1/reading-requests/{request['id']}/report", json=draft, headers=world.auth("cardio")
    )
    assert saved.status == 200, await saved.text()
    return study, request["id"]


async def signed_report(client: Client, world: World) -> tuple[str, int, dict[str, Any]]:
    """A signed report: (study UID, request id, the sign response)."""
    study, request_id = await claimed_with_draft(client, world)
    response = await client.post(
        f"/api/v1/reading-requests/{request_id}/report/sign",
        json={"password": PASSWORD},
        headers=world.auth("cardio"),
    )
    assert response.status == 201, await response.text()
    return study, request_id, await response.json()
