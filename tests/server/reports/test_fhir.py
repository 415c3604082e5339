"""The FHIR R4 DiagnosticReport of a signed report, validated by fhir.resources' R4B models."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from server.reports.fhir import ADDENDUM_OF, diagnostic_report
from tests.server.reports.test_report_pdf import sample_record

PDF = b"%PDF-1.7\n% a signed report\n%%EOF\n"
REPORT_URL = "https://doorstep.example/api/v1/reports/12"
PDF_URL = "https://doorstep.example/api/v1/reports/12.pdf"


def record(**changes: Any) -> dict[str, Any]:
    """A signed ECG report record with hostile findings and a Chinese impression."""
    hostile = {"findings": "<script>alert(1)</script>", "impression": "Normal ECG 王小明"}
    return sample_record(**{**hostile, **changes})


def build(value: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The DiagnosticReport dict, checked to be JSON and to validate again as R4B."""
    resource = diagnostic_report(value, report_url=REPORT_URL, pdf_url=PDF_URL, pdf=PDF, **options)
    text = json.dumps(resource, ensure_ascii=False)
    assert json.loads(text) == resource
    DiagnosticReport.model_validate_json(text)
    return resource


def test_a_signed_ecg_report() -> None:
    resource = build(record())
    assert resource["resourceType"] == "DiagnosticReport"
    assert resource["id"] == "12"
    assert resource["identifier"][0] == {
        "use": "official",
        "system": "urn:doorstep:report",
        "value": "12",
    }
    assert {"system": "urn:ietf:rfc:3986", "value": REPORT_URL, "use": "secondary"} in resource[
        "identifier"
    ]
    assert resource["status"] == "final"
    assert resource["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                    "code": "EC",
                    "display": "Electrocardiac",
                }
            ]
        }
    ]
    assert resource["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "11524-6", "display": "EKG study"}
    ]
    assert resource["subject"] == {
        "type": "Patient",
        "identifier": {"value": "A-1"},
        "display": "Alice Able",
    }
    assert resource["effectiveDateTime"] == "2026-11-30"
    assert resource["issued"] == "2026-12-01T10:12:03Z"
    assert resource["performer"] == [{"type": "Organization", "display": "City Hospital"}]
    assert resource["resultsInterpreter"] == [
        {
            "type": "Practitioner",
            "identifier": {"system": "urn:doorstep:user", "value": "dr.heart"},
            "display": "Dr Hart",
        }
    ]
    assert resource["imagingStudy"] == [
        {
            "type": "ImagingStudy",
            "identifier": {
                "system": "urn:dicom:uid",
                "value": "urn:oid:1.2.826.0.1.3680043.10.1.1",
            },
        }
    ]
    assert resource["conclusion"] == "Normal ECG 王小明"
    assert resource["basedOn"][0]["identifier"]["value"] == "7"
    assert "extension" not in resource


def test_the_pdf_attachment_has_its_size_and_sha1() -> None:
    [form] = build(record())["presentedForm"]
    assert form == {
        "contentType": "application/pdf",
        "url": PDF_URL,
        "size": len(PDF),
        "hash": base64.b64encode(hashlib.sha1(PDF).digest()).decode(),
        "title": "ECG report",
        "creation": "2026-12-01T10:12:03Z",
    }
    assert len(base64.b64decode(form["hash"])) == 20


def test_an_imaging_report_is_radiology() -> None:
    resource = build(
        record(study={"study_uid": "1.2.3", "study_date": "", "modalities": ["CT", "SR"]})
    )
    assert resource["category"][0]["coding"][0]["code"] == "RAD"
    assert resource["code"]["coding"][0]["code"] == "18748-4"
    assert resource["presentedForm"][0]["title"] == "Imaging report"
    assert "effectiveDateTime" not in resource


def test_an_addendum_points_at_the_report_it_amends() -> None:
    resource = build(
        record(
            report_id=13,
            kind="addendum",
            amends=12,
            text="QTc corrected.",
            findings="",
            impression="",
        )
    )
    assert resource["id"] == "13"
    assert resource["extension"] == [
        {
            "url": ADDENDUM_OF,
            "valueReference": {
                "type": "DiagnosticReport",
                "identifier": {"system": "urn:doorstep:report", "value": "12"},
            },
        }
    ]
    assert resource["conclusion"] == "QTc corrected."
    assert resource["code"]["text"] == "Addendum"
    assert resource["status"] == "final"


def test_a_report_with_addenda_is_appended() -> None:
    assert build(record(), status="appended")["status"] == "appended"
    with pytest.raises(ValueError, match="status"):
        build(record(), status="signed")


def test_empty_patient_fields_are_left_out() -> None:
    resource = build(record(patient={"id": "", "name": "", "birth_date": "", "sex": ""}))
    assert "subject" not in resource
    named_only = build(
        record(patient={"id": "", "name": "Able^Alice", "birth_date": "", "sex": ""})
    )
    assert named_only["subject"] == {"type": "Patient", "display": "Alice Able"}
    identified_only = build(record(patient={"id": "A-1", "name": "", "birth_date": "", "sex": ""}))
    assert identified_only["subject"] == {"type": "Patient", "identifier": {"value": "A-1"}}


def test_an_instant_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="issued"):
        build(record(signed_at="2026-12-01T10:12:03"))
