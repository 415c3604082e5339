"""De-identified export: a zip of de-identified instances, options, org scoping and audit."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.uid import UID

from server.archive.service import StoredInstance
from server.audit.models import AuditEvent
from server.dicomweb.export import entry_names
from tests.dicom_tools.part10 import bundled
from tests.server.dicomweb.helpers import blob_files, stow
from tests.support import Client, World, audit_events

NAME = "Zebedee^Secretname"
STUDY = "1.2.826.0.1.3680043.8.498.77"
SERIES = "1.2.826.0.1.3680043.8.498.78"
INSTANCES = ["1.2.826.0.1.3680043.8.498.79", "1.2.826.0.1.3680043.8.498.80"]
EXPORT = f"/dicom-web/studies/{STUDY}/export"


def _instance(sop_instance_uid: str, number: int) -> bytes:
    """CT_small as one instance of the test study, with a recognisable patient name."""
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.PatientName = NAME
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.SOPInstanceUID = sop_instance_uid
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    ds.InstanceNumber = number
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _details(event: AuditEvent) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(event.details)
    return details


def _study_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID)


async def _stored(client: Client, world: World) -> list[bytes]:
    parts = [_instance(uid, n) for n, uid in enumerate(INSTANCES, start=1)]
    assert (await stow(client, world, "gp-a", parts)).status == 200
    return parts


async def _export(client: Client, world: World, query: str = "") -> dict[str, bytes]:
    response = await client.get(EXPORT + query, headers=world.auth("gp-a"))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


async def test_export_zips_every_instance_de_identified(client: Client, world: World) -> None:
    originals = await _stored(client, world)
    files = await _export(client, world)
    assert sorted(files) == ["series-001/instance-0001.dcm", "series-001/instance-0002.dcm"]
    datasets = []
    for data in files.values():
        for secret in [NAME.encode(), b"Zebedee", STUDY.encode(), *(u.encode() for u in INSTANCES)]:
            assert secret not in data
        datasets.append(pydicom.dcmread(io.BytesIO(data)))
    assert all(NAME.encode() in original for original in originals)
    first, second = datasets
    assert first.StudyInstanceUID == second.StudyInstanceUID != STUDY
    assert first.SeriesInstanceUID == second.SeriesInstanceUID != SERIES
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.PatientName == second.PatientName
    assert str(first.PatientName).startswith("ANON-")
    assert first.PatientIdentityRemoved == "YES"
    assert [i.CodeValue for i in first.DeidentificationMethodCodeSequence] == ["113100"]
    assert first.StudyDate == ""
    assert first.PixelData == pydicom.dcmread(io.BytesIO(originals[0])).PixelData
    (event,) = await audit_events(client.app, "study.export")
    assert event.outcome == "success"
    assert event.object_id == STUDY
    assert event.org_id == world.orgs["clinic-a"]
    assert _details(event) == {
        "retain_uids": False,
        "retain_dates": False,
        "instances": 2,
        "pseudonym": str(first.PatientName),
    }
    retrievals = await audit_events(client.app, "dicom.retrieve")
    assert [(e.outcome, _details(e)["purpose"]) for e in retrievals] == [("success", "export")]


async def test_each_export_replaces_uids_afresh(client: Client, world: World) -> None:
    await _stored(client, world)
    once, twice = await _export(client, world), await _export(client, world)
    name = "series-001/instance-0001.dcm"
    assert _study_uid(once[name]) != _study_uid(twice[name])


async def test_options_retain_uids_and_dates(client: Client, world: World) -> None:
    await _stored(client, world)
    files = await _export(client, world, "?retain_uids=true&retain_dates=true")
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files.values()]
    assert [ds.SOPInstanceUID for ds in datasets] == INSTANCES
    assert {ds.StudyInstanceUID for ds in datasets} == {STUDY}
    assert {ds.StudyDate for ds in datasets} == {"20040119"}
    assert {ds.PatientBirthDate for ds in datasets} == {""}
    codes = [i.CodeValue for i in datasets[0].DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113110", "113106"]
    assert all(NAME.encode() not in data for data in files.values())
    (event,) = await audit_events(client.app, "study.export")
    assert _details(event)["retain_uids"] is True
    assert _details(event)["retain_dates"] is True


async def test_another_clinic_gets_404_and_the_attempt_is_audited(
    client: Client, world: World
) -> None:
    await _stored(client, world)
    response = await client.get(EXPORT, headers=world.auth("gp-b"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert (await client.get(EXPORT, headers=world.auth("kiosk"))).status == 403
    assert (await client.get(EXPORT)).status == 401
    assert (await client.get(EXPORT, headers=world.auth("admin"))).status == 404
    assert await audit_events(client.app, "study.export") == []
    denied = [e for e in await audit_events(client.app, "dicom.retrieve") if e.actor == "gp-b"]
    assert [(e.outcome, e.org_id, _details(e)["purpose"]) for e in denied] == [
        ("denied", world.orgs["clinic-a"], "export")
    ]


@pytest.mark.parametrize(
    "query", ["?retain_uids=yes", "?retain_dates=1", "?retain_uids=TRUE", "?retain_dates="]
)
async def test_a_bad_option_value_is_400(client: Client, world: World, query: str) -> None:
    await _stored(client, world)
    response = await client.get(EXPORT + query, headers=world.auth("gp-a"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed"
    assert await audit_events(client.app, "study.export") == []


async def test_a_bad_study_uid_is_400(client: Client, world: World) -> None:
    response = await client.get("/dicom-web/studies/1.2.x/export", headers=world.auth("gp-a"))
    assert response.status == 400


async def test_an_unreadable_blob_cuts_the_download(client: Client, world: World) -> None:
    await _stored(client, world)
    for path in blob_files(client):
        path.write_bytes(b"not DICOM at all")
    response = await client.get(EXPORT, headers=world.auth("gp-a"))
    with pytest.raises(aiohttp.ClientError):
        await response.read()
    assert (await client.get("/healthz")).status == 200


def test_entry_names_are_generated_per_series_in_order() -> None:
    def item(series: str, sop: str) -> StoredInstance:
        return StoredInstance(STUDY, series, sop, "1.2", "1.2.840.10008.1.2.1", "0" * 64, 1)

    found = [item("1.1", "9"), item("1.1", "8"), item("../../etc", "7"), item("1.1", "6")]
    assert entry_names(found) == [
        "series-001/instance-0001.dcm",
        "series-001/instance-0002.dcm",
        "series-002/instance-0001.dcm",
        "series-001/instance-0003.dcm",
    ]
