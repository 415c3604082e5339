"""Browser upload of HL7 aECG (.xml): converted by the import service, archived, linked."""

from __future__ import annotations

import io
import json
from typing import Any

import pydicom
import pytest
from sqlalchemy import select

from server import keys
from server.archive.models import Instance, Study
from tests.dicom_tools.aecg_documents import document, sample, sine_digits
from tests.forms import sign_in
from tests.server.dicomweb.helpers import blob_files, index_counts, retrieve
from tests.support import Client, World, audit_events

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


async def post_aecg(
    client: Client,
    csrf: str | None,
    body: bytes,
    *,
    patient: int | None = None,
    content_type: str = "application/xml",
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    params = {"name": "rest ecg.xml"}
    if patient is not None:
        params["patient"] = str(patient)
    response = await client.post("/upload/aecg", data=body, headers=headers, params=params)
    text = await response.text()
    return response.status, json.loads(text) if response.content_type.endswith("json") else text


async def _study(client: Client, study_uid: str) -> tuple[Study, Instance]:
    async with client.app[keys.SESSIONMAKER]() as session:
        study = await session.scalar(select(Study).where(Study.study_uid == study_uid))
        assert study is not None
        instance = await session.scalar(select(Instance).where(Instance.study_id == study.id))
        assert instance is not None
        return study, instance


async def test_an_xml_file_naming_nobody_becomes_the_chosen_patients_ecg(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "gp-a")
    status, body = await post_aecg(
        client, csrf, document({"I": sine_digits()}), patient=world.patients["alice"]
    )
    assert status == 200, body
    [result] = body["results"]
    assert (result["name"], result["outcome"]) == ("rest ecg.xml", "stored")
    assert result["message"].startswith("Converted from HL7 aECG.")
    assert body["mismatches"] == []
    study, instance = await _study(client, result["study_uid"])
    assert instance.source == "upload-aecg"
    assert study.linked_patient_id == world.patients["alice"]
    reply, parts = await retrieve(
        client, world, "gp-a", f"/dicom-web/studies/{study.study_uid}", Accept=AS_STORED
    )
    assert reply.status == 200
    ds = pydicom.dcmread(io.BytesIO(parts[0][1]))
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == (
        "Able^Alice",
        "A-1",
        "19700101",
    )
    links = [json.loads(e.details) for e in await audit_events(client.app, "study.patient_link")]
    assert [d["source"] for d in links] == ["upload-aecg"]


async def test_a_document_naming_someone_else_waits_for_confirmation(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "gp-a")
    status, body = await post_aecg(
        client, csrf, sample("hl7-aecg-example.xml"), patient=world.patients["alice"]
    )
    assert status == 200, body
    [mismatch] = body["mismatches"]
    assert mismatch["study_uid"] == body["results"][0]["study_uid"]
    assert {d["attribute"] for d in mismatch["differences"]} >= {"PatientName", "PatientID"}
    study, _ = await _study(client, mismatch["study_uid"])
    assert study.linked_patient_id is None
    assert study.patient_name == "Clark"


async def test_without_a_patient_the_ecg_is_stored_unlinked(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    status, body = await post_aecg(client, csrf, document({"V1": sine_digits()}))
    assert status == 200, body
    study, _ = await _study(client, body["results"][0]["study_uid"])
    assert (study.linked_patient_id, study.patient_name) == (None, None)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"<x/>", "application/xml", 422, "invalid_aecg"),
        ("fda-aecg-minimum.xml", "text/xml", 422, "invalid_aecg"),
        (document({"I": sine_digits()}), "application/zip", 415, "unsupported_media_type"),
    ],
)
async def test_refused_files_answer_json_and_store_nothing(
    client: Client, world: World, body: bytes | str, content_type: str, status: int, code: str
) -> None:
    body = sample(body) if isinstance(body, str) else body
    csrf = await sign_in(client, "gp-a")
    found, answer = await post_aecg(
        client, csrf, body, patient=world.patients["alice"], content_type=content_type
    )
    assert (found, answer["error"]["code"]) == (status, code)
    assert await index_counts(client) == (0, 0, 0)
    assert blob_files(client) == []


async def test_only_gps_with_the_csrf_token_of_their_session_upload(
    client: Client, world: World
) -> None:
    xml = document({"I": sine_digits()})
    csrf = await sign_in(client, "gp-a")
    assert (await post_aecg(client, None, xml))[0] == 403
    other_clinic, _ = await post_aecg(client, csrf, xml, patient=world.patients["bella"])
    assert other_clinic == 404
    assert await index_counts(client) == (0, 0, 0)
    await client.post("/logout", headers={"X-CSRF-Token": csrf})
    csrf = await sign_in(client, "cardio")
    assert (await post_aecg(client, csrf, xml))[0] == 403


async def test_the_page_says_xml_is_taken(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    page = await (await client.get("/upload")).text()
    assert "HL7 aECG ECGs (.xml, at most 32 MB" in page
