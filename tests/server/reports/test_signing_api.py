"""Signing reports through the API: the contract, outputs filed in the study, verification."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from sqlalchemy import select, update

from server import keys
from server.archive.models import Instance, Series, Study
from server.reading.models import ReadingRequest
from server.settings import Settings
from tests.server.reading.requests import stored_study
from tests.server.reports.flow import DRAFT, claimed_with_draft, signed_report
from tests.server.test_cli import doorstep
from tests.support import PASSWORD, Client, World, audit_actions


async def _study_hashes(client: Client, study_uid: str) -> list[dict[str, str]]:
    """The study's instances as the archive indexed them, without the report's own objects."""
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(Instance.sop_instance_uid, Instance.sha256)
            .join(Study, Study.id == Instance.study_id)
            .join(Series, Series.id == Instance.series_id)
            .where(Study.study_uid == study_uid, Series.modality.not_in(("DOC", "SR")))
            .order_by(Instance.sop_instance_uid)
        )
        return [{"sop_instance_uid": uid, "sha256": digest} for uid, digest in rows]


async def test_sign_contract_and_the_record_covers_every_instance(
    client: Client, world: World
) -> None:
    study, request_id, body = await signed_report(client, world)
    assert set(body) >= {"report_id", "signed_at", "signer", "instances"}
    assert body["signer"] == "cardio"
    assert body["instances"] == await _study_hashes(client, study)
    assert len(body["instances"]) == 1
    record = await (
        await client.get(f"/api/v1/reports/{body['report_id']}", headers=world.auth("gp-a"))
    ).json()
    assert record["findings"] == DRAFT["findings"]
    assert record["impression"] == DRAFT["impression"]
    assert record["measurements"] == DRAFT["measurements"]
    assert record["request"]["id"] == request_id
    assert record["study"]["study_uid"] == study
    assert record["signer"]["username"] == "cardio"
    assert record["instances"] == body["instances"]
    status = await client.get(f"/api/v1/reading-requests/{request_id}", headers=world.auth("gp-a"))
    listed = await status.json()
    assert (listed["status"], listed["report_id"]) == ("signed", body["report_id"])
    actions = [a for a, _, outcome in await audit_actions(client.app) if outcome == "success"]
    assert "auth.confirm" in actions
    assert "report.sign" in actions


async def test_the_signed_pdf_verifies_and_one_changed_byte_does_not(
    client: Client, world: World
) -> None:
    _, _, body = await signed_report(client, world)
    pdf_response = await client.get(
        f"/api/v1/reports/{body['report_id']}.pdf", headers=world.auth("gp-a")
    )
    assert pdf_response.status == 200
    assert pdf_response.content_type == "application/pdf"
    pdf = await pdf_response.read()
    verified = await client.post(
        "/api/v1/reports/verify",
        data=pdf,
        headers={**world.auth("gp-a"), "Content-Type": "application/pdf"},
    )
    assert verified.status == 200
    result = await verified.json()
    assert result["valid"] is True, result
    assert result["problems"] == []
    assert result["signer"] == "cardio"
    assert result["instances"] == body["instances"]
    assert result["signed_at"] is not None
    for position in (10, len(pdf) // 3, len(pdf) // 2, len(pdf) - 10):
        changed = bytearray(pdf)
        changed[position] ^= 0x01
        refused = await client.post(
            "/api/v1/reports/verify",
            data=bytes(changed),
            headers={**world.auth("gp-a"), "Content-Type": "application/pdf"},
        )
        assert refused.status == 200
        found = await refused.json()
        assert found["valid"] is False, position
        assert found["problems"], position
    not_pdf = await client.post(
        "/api/v1/reports/verify",
        data=b"hello",
        headers={**world.auth("gp-a"), "Content-Type": "application/pdf"},
    )
    assert (await not_pdf.json())["valid"] is False
    wrong_type = await client.post(
        "/api/v1/reports/verify", data=pdf, headers={**world.auth("gp-a")}
    )
    assert wrong_type.status == 415


async def test_the_report_is_filed_in_the_study_as_encapsulated_pdf_and_sr(
    client: Client, world: World
) -> None:
    study, _, body = await signed_report(client, world)
    series = await client.get(f"/dicom-web/studies/{study}/series", headers=world.auth("gp-a"))
    modalities = sorted(s["00080060"]["Value"][0] for s in await series.json())
    assert modalities == ["DOC", "ECG", "SR"]
    pdf = await (
        await client.get(f"/api/v1/reports/{body['report_id']}.pdf", headers=world.auth("gp-a"))
    ).read()
    instances = await client.get(
        f"/dicom-web/studies/{study}/instances?Modality=DOC", headers=world.auth("gp-a")
    )
    found = await instances.json()
    assert len(found) == 1
    sop = found[0]["00080018"]["Value"][0]
    series_uid = found[0]["0020000E"]["Value"][0]
    part10 = await client.get(
        f"/dicom-web/studies/{study}/series/{series_uid}/instances/{sop}",
        headers={**world.auth("gp-a"), "Accept": 'multipart/related; type="application/dicom"'},
    )
    assert part10.status == 200
    raw = await part10.read()
    start = raw.index(b"DICM") - 128
    document = pydicom.dcmread(io.BytesIO(raw[start:]))
    length = int(document.EncapsulatedDocumentLength)
    assert document.EncapsulatedDocument[:length] == pdf


async def test_fhir_diagnostic_report_validates(client: Client, world: World) -> None:
    study, _, body = await signed_report(client, world)
    response = await client.get(
        f"/api/v1/reports/{body['report_id']}/fhir", headers=world.auth("gp-a")
    )
    assert response.status == 200
    assert response.content_type == "application/fhir+json"
    resource = DiagnosticReport.model_validate(await response.json(content_type=None))
    assert resource.status == "final"
    assert resource.presentedForm[0].url.endswith(f"/api/v1/reports/{body['report_id']}.pdf")
    assert any(study in (s.identifier.value or "") for s in resource.imagingStudy or [])


async def test_refusals_wrong_password_twice_not_holder_and_lapsed(
    client: Client, world: World
) -> None:
    _, request_id = await claimed_with_draft(client, world)
    url = f"/api/v1/reading-requests/{request_id}/report/sign"
    wrong = await client.post(url, json={"password": "nope"}, headers=world.auth("cardio"))
    assert wrong.status == 401
    assert "not right" in (await wrong.json())["error"]["message"]
    assert ("auth.confirm", "cardio", "failure") in await audit_actions(client.app, "auth.")
    gp = await client.post(url, json={"password": PASSWORD}, headers=world.auth("gp-a"))
    assert gp.status == 403
    radio = await client.post(url, json={"password": PASSWORD}, headers=world.auth("radio"))
    assert radio.status == 404
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ReadingRequest)
            .where(ReadingRequest.id == request_id)
            .values(lease_expires_at=ReadingRequest.created_at)
        )
    lapsed = await client.post(url, json={"password": PASSWORD}, headers=world.auth("cardio"))
    assert lapsed.status == 409
    await client.post(f"/api/v1/reading-requests/{request_id}/claim", headers=world.auth("cardio"))
    ok = await client.post(url, json={"password": PASSWORD}, headers=world.auth("cardio"))
    assert ok.status == 201
    twice = await client.post(url, json={"password": PASSWORD}, headers=world.auth("cardio"))
    assert twice.status == 409
    edit = await client.put(
        f"/api/v1/reading-requests/{request_id}/report",
        json={"findings": "changed"},
        headers=world.auth("cardio"),
    )
    assert edit.status == 409


async def test_wrong_passwords_are_throttled(client: Client, world: World) -> None:
    _, request_id = await claimed_with_draft(client, world)
    url = f"/api/v1/reading-requests/{request_id}/report/sign"
    statuses = [
        (await client.post(url, json={"password": "guess"}, headers=world.auth("cardio"))).status
        for _ in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429


async def test_signing_needs_something_written(client: Client, world: World) -> None:
    _, request_id = await claimed_with_draft(
        client, world, draft={"findings": " ", "impression": ""}
    )
    response = await client.post(
        f"/api/v1/reading-requests/{request_id}/report/sign",
        json={"password": PASSWORD},
        headers=world.auth("cardio"),
    )
    assert response.status == 422


async def test_other_clinics_and_anonymous_callers_see_no_report(
    client: Client, world: World
) -> None:
    _, _, body = await signed_report(client, world)
    for path in ("", ".pdf", "/fhir"):
        url = f"/api/v1/reports/{body['report_id']}{path}"
        assert (await client.get(url, headers=world.auth("gp-b"))).status == 404
        assert (await client.get(url, headers=world.auth("radio"))).status == 404
        assert (await client.get(url)).status == 401
    assert ("report.read", "gp-b", "denied") in await audit_actions(client.app, "report.")
    listed = await client.get("/api/v1/reports", headers=world.auth("gp-b"))
    assert await listed.json() == []


async def test_acknowledge_and_addendum(client: Client, world: World) -> None:
    _, _, body = await signed_report(client, world)
    report_id = body["report_id"]
    ack = await client.post(f"/api/v1/reports/{report_id}/acknowledge", headers=world.auth("gp-a"))
    assert ack.status == 200
    acknowledged = await ack.json()
    assert acknowledged["acknowledged_by"] == "gp-a"
    again = await client.post(
        f"/api/v1/reports/{report_id}/acknowledge", headers=world.auth("gp-a")
    )
    assert (await again.json())["acknowledged_at"] == acknowledged["acknowledged_at"]
    addendum = await client.post(
        f"/api/v1/reports/{report_id}/addenda",
        json={"text": "QTc recalculated: 410 ms.", "password": PASSWORD},
        headers=world.auth("cardio"),
    )
    assert addendum.status == 201, await addendum.text()
    added = await addendum.json()
    assert added["amends"] == report_id
    record = await (
        await client.get(f"/api/v1/reports/{added['report_id']}", headers=world.auth("gp-a"))
    ).json()
    assert (record["kind"], record["amends"], record["text"]) == (
        "addendum",
        report_id,
        "QTc recalculated: 410 ms.",
    )
    listed = await (await client.get("/api/v1/reports", headers=world.auth("gp-a"))).json()
    original = next(r for r in listed if r["report_id"] == report_id)
    assert original["addenda"] == [added["report_id"]]
    radio = await client.post(
        f"/api/v1/reports/{report_id}/addenda",
        json={"text": "x", "password": PASSWORD},
        headers=world.auth("radio"),
    )
    assert radio.status == 404
    fhir = await (
        await client.get(f"/api/v1/reports/{report_id}/fhir", headers=world.auth("gp-a"))
    ).json(content_type=None)
    assert fhir["status"] == "appended"


async def test_doorstep_verify_offline_with_the_exported_ca(
    client: Client, world: World, settings: Settings, tmp_path: Path
) -> None:
    _, _, body = await signed_report(client, world)
    pdf = await (
        await client.get(f"/api/v1/reports/{body['report_id']}.pdf", headers=world.auth("gp-a"))
    ).read()
    report = tmp_path / "report.pdf"
    report.write_bytes(pdf)
    exported = doorstep(settings, "signing", "export-ca")
    assert exported.returncode == 0, exported.stderr
    ca = tmp_path / "ca.pem"
    ca.write_text(exported.stdout)
    intact = doorstep(settings, "verify", str(report), "--ca", str(ca))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "VALID" in intact.stdout
    assert body["instances"][0]["sop_instance_uid"] in intact.stdout
    changed = bytearray(pdf)
    changed[len(pdf) // 2] ^= 0x20
    report.write_bytes(bytes(changed))
    broken = doorstep(settings, "verify", str(report), "--ca", str(ca))
    assert broken.returncode == 1
    assert "INVALID" in broken.stdout
    assert "problem:" in broken.stdout
    missing = doorstep(settings, "verify", str(tmp_path / "missing.pdf"))
    assert missing.returncode == 2


async def test_a_study_of_another_clinic_cannot_be_reported_on(
    client: Client, world: World
) -> None:
    other = await stored_study(client, world, org="clinic-b")
    response = await client.post(
        "/api/v1/reading-requests", json={"study_uid": other}, headers=world.auth("gp-a")
    )
    assert response.status == 404
