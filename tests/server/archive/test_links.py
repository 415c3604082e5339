"""Studies are linked to the clinic's registered patient by identifier on arrival, any route."""

from __future__ import annotations

import json

from sqlalchemy import select

from server import keys
from server.archive.models import Study
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.support import Client, World, audit_events, store


def instance(**replace: bytes) -> bytes:
    """A study of Alice (identifier A-1, born 1970-01-01) unless told otherwise."""
    values = {0x00100020: replace.get("patient_id", b"A-1"), 0x00100010: b"Able^Alice"}
    extra = {0x00100030: ("DA", replace.get("birth_date", b"19700101"))}
    return part10(dataset(replace=values, extra=extra))


async def linked(client: Client) -> dict[str, int | None]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(select(Study.study_uid, Study.linked_patient_id))
        return {uid: patient for uid, patient in rows}


async def test_a_study_carrying_a_registered_identifier_is_linked(
    client: Client, world: World
) -> None:
    [result] = await store(client.app, world.orgs["clinic-a"], [instance()])
    assert result.ok
    assert await linked(client) == {STUDY_UID: world.patients["alice"]}
    [event] = await audit_events(client.app, "study.patient_link")
    assert (event.outcome, event.object_id) == ("success", STUDY_UID)
    assert json.loads(event.details)["by"] == "identifier"


async def test_a_contradicting_birth_date_is_not_linked_and_is_audited(
    client: Client, world: World
) -> None:
    await store(client.app, world.orgs["clinic-a"], [instance(birth_date=b"19991231")])
    assert await linked(client) == {STUDY_UID: None}
    [event] = await audit_events(client.app, "study.patient_link")
    assert event.outcome == "failure"
    assert "birth date" in json.loads(event.details)["reason"]


async def test_another_clinics_identifier_links_nothing(client: Client, world: World) -> None:
    # B-1 is Bella's identifier in clinic B; the study arrives for clinic A.
    await store(client.app, world.orgs["clinic-a"], [instance(patient_id=b"B-1")])
    assert await linked(client) == {STUDY_UID: None}
    assert await audit_events(client.app, "study.patient_link") == []
