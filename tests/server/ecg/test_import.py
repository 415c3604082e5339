"""POST /api/v1/ecg/import: aECG in, a 12-lead ECG archived in the caller's clinic; refusals."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

from dicom_tools.aecg import read_aecg
from dicom_tools.ecg_encoding import TWELVE_LEAD_ECG
from server import keys
from server.archive.models import Instance, Study
from server.ecg import importing
from tests.dicom_tools.aecg_documents import (
    ENTITY_EXPANSION,
    EXTERNAL_ENTITY,
    document,
    sample,
    sine_digits,
    subject,
)
from tests.forms import sign_in
from tests.server.dicomweb.helpers import blob_files, index_counts, retrieve
from tests.support import Client, World, audit_events

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


async def _import(
    client: Client, world: World, user: str, body: bytes, content_type: str = "application/xml"
) -> tuple[int, Any]:
    response = await client.post(
        "/api/v1/ecg/import",
        data=body,
        headers={**world.auth(user), "Content-Type": content_type},
    )
    return response.status, await response.json()


async def _instance(client: Client, sop_instance_uid: str) -> tuple[Instance, Study]:
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(
            select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
        )
        assert row is not None
        study = await session.get(Study, row.study_id)
        assert study is not None
        return row, study


async def test_an_aecg_becomes_a_12_lead_ecg_of_the_callers_clinic(
    client: Client, world: World
) -> None:
    xml = sample("hl7-aecg-example.xml")
    status, body = await _import(client, world, "gp-a", xml)
    assert status == 201, body
    assert set(body) == {"study_uid", "sop_instance_uid"}
    row, study = await _instance(client, body["sop_instance_uid"])
    assert study.study_uid == body["study_uid"]
    assert row.sop_class_uid == TWELVE_LEAD_ECG
    assert row.source == "aecg-import"
    assert row.org_id == study.org_id == world.orgs["clinic-a"]
    assert study.patient_name == "Clark"
    stored = [
        e for e in await audit_events(client.app, "dicom.store") if e.object_id == study.study_uid
    ]
    sources = [(e.outcome, json.loads(e.details)["source"]) for e in stored]
    assert sources == [("success", "aecg-import")]

    url = f"/dicom-web/studies/{study.study_uid}"
    reply, parts = await retrieve(client, world, "gp-a", url, Accept=AS_STORED)
    assert reply.status == 200
    ds = pydicom.dcmread(io.BytesIO(parts[0][1]))
    expected = np.stack(list(read_aecg(xml).leads.values()), axis=1)
    assert np.array_equal(ds.waveform_array(0), expected)  # exact: sensitivity = the 2.5 uV
    other, _ = await retrieve(client, world, "gp-b", url)
    assert other.status == 404


async def test_text_xml_and_a_specialist_are_accepted(client: Client, world: World) -> None:
    status, body = await _import(
        client, world, "cardio", document({"II": sine_digits()}), "text/xml"
    )
    assert status == 201, body
    row, _ = await _instance(client, body["sop_instance_uid"])
    assert row.org_id == world.orgs["hospital"]


async def test_a_subject_with_a_registered_identifier_is_linked_to_the_patient(
    client: Client, world: World
) -> None:
    alice = subject("Able^Alice", "A-1", "19700101", "F")
    xml = document({"I": sine_digits()}, subject=alice)
    status, body = await _import(client, world, "gp-a", xml)
    assert status == 201, body
    _, study = await _instance(client, body["sop_instance_uid"])
    assert study.linked_patient_id == world.patients["alice"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (ENTITY_EXPANSION, "forbidden_xml"),
        (EXTERNAL_ENTITY, "forbidden_xml"),
        (document({"I": sine_digits()})[:-50], "not_xml"),
        (document({"I": sine_digits()}, namespace="urn:hl7-org:v2"), "not_aecg"),
        (b'<?xml version="1.0"?><html><body>hello</body></html>', "not_aecg"),
        (document({}), "no_leads"),
        (document({"I": sine_digits(2500), "V1": sine_digits(2000)}), "inconsistent_leads"),
        (document({"I": sine_digits()}, unit="mmHg"), "unknown_unit"),
        (document({"I": [0] * 20000}), "too_large"),
        (document({"I": sine_digits(20)}), "too_short"),
        (
            document({"I": sine_digits(4000)}, increment='<increment value="0.25" unit="ms"/>'),
            "unsupported_sampling_frequency",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_refused_documents_are_422_with_a_reason_and_nothing_is_stored(
    client: Client, world: World, body: bytes, reason: str
) -> None:
    before = (await index_counts(client), blob_files(client))
    status, answer = await _import(client, world, "gp-a", body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_aecg"
    assert answer["error"]["details"]["reason"] == reason
    assert answer["error"]["message"]
    assert (await index_counts(client), blob_files(client)) == before
    [refusal] = [e for e in await audit_events(client.app, "dicom.store") if e.outcome != "success"]
    details = json.loads(refusal.details)
    assert (details["source"], details["reason"]) == ("aecg-import", reason)
    assert refusal.org_id == world.orgs["clinic-a"]


async def test_the_minimum_document_is_refused_with_its_reason(
    client: Client, world: World
) -> None:
    status, answer = await _import(client, world, "gp-a", sample("fda-aecg-minimum.xml"))
    assert status == 422
    assert answer["error"]["details"]["reason"] == "too_short"
    assert await index_counts(client) == (0, 0, 0)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/dicom", "text/plain", "application/zip"]
)
async def test_another_content_type_is_415(client: Client, world: World, content_type: str) -> None:
    status, answer = await _import(
        client, world, "gp-a", sample("hl7-aecg-example.xml"), content_type
    )
    assert status == 415
    assert answer["error"]["code"] == "unsupported_media_type"
    assert await index_counts(client) == (0, 0, 0)


async def test_an_empty_or_oversized_body_is_refused(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _ = await _import(client, world, "gp-a", b"")
    assert status == 400
    monkeypatch.setattr(importing, "MAX_AECG_BYTES", 100_000)
    status, answer = await _import(client, world, "gp-a", sample("hl7-aecg-example.xml"))
    assert status == 413, answer
    assert await index_counts(client) == (0, 0, 0)


async def test_kiosks_strangers_and_sessions_without_csrf_cannot_import(
    client: Client, world: World
) -> None:
    xml = document({"I": sine_digits()})
    kiosk, _ = await _import(client, world, "kiosk", xml)
    anonymous = await client.post(
        "/api/v1/ecg/import", data=xml, headers={"Content-Type": "application/xml"}
    )
    assert (kiosk, anonymous.status) == (403, 401)
    csrf = await sign_in(client, "gp-a")
    without = await client.post(
        "/api/v1/ecg/import", data=xml, headers={"Content-Type": "application/xml"}
    )
    assert without.status == 403
    with_token = await client.post(
        "/api/v1/ecg/import",
        data=xml,
        headers={"Content-Type": "application/xml", "X-CSRF-Token": csrf},
    )
    assert with_token.status == 201
    assert (await index_counts(client))[2] == 1


async def test_the_import_is_in_the_openapi_document(client: Client, world: World) -> None:
    response = await client.get("/api/v1/openapi.json", headers=world.auth("gp-a"))
    operation = (await response.json())["paths"]["/api/v1/ecg/import"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/xml", "text/xml"}
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EcgImported"
    }
    assert {"415", "422", "413", "429"} <= set(operation["responses"])


async def test_a_document_larger_than_the_json_body_limit_is_imported(
    client: Client, world: World
) -> None:
    """16384 samples of 12 leads (about 1.2 MB of XML): beyond the 1 MiB JSON body limit."""
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    leads = {
        name: [(i * 7919 + k * 31) % 40000 - 20000 for i in range(16384)]
        for k, name in enumerate(names)
    }
    xml = document(leads, increment='<increment value="1" unit="ms"/>')
    assert len(xml) > client.app[keys.SETTINGS].max_body_bytes
    status, body = await _import(client, world, "gp-a", xml)
    assert status == 201, body
