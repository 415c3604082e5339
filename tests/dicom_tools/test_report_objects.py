"""The Encapsulated PDF of a signed report: PS3.3 A.45.1, checked by dciodvfy and read back."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from reportlab.pdfgen import canvas

from dicom_tools.report_objects import (
    ENCAPSULATED_PDF_STORAGE,
    PATIENT_STUDY_KEYWORDS,
    encapsulated_pdf,
    pdf_bytes,
    to_part10,
)
from tests.dicom_tools.part10 import bundled
from tests.support import require_tool

ECG_FILE = "waveform_ecg.dcm"
CT_FILE = "CT_small.dcm"
OTHER_INSTANCE = "1.2.826.0.1.3680043.8.498.77"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def evidence_of(name: str) -> Dataset:
    """The header of a bundled pydicom test file."""
    return pydicom.dcmread(bundled(name), stop_before_pixels=True)


def record_for(evidence: Dataset, **changes: Any) -> dict[str, Any]:
    """A signed report record (record.md's shape) over the evidence and one other instance."""
    modality = "ECG" if str(evidence.Modality) == "ECG" else str(evidence.Modality)
    instances = sorted(
        [
            {"sop_instance_uid": str(evidence.SOPInstanceUID), "sha256": "a" * 64},
            {"sop_instance_uid": OTHER_INSTANCE, "sha256": "b" * 64},
        ],
        key=lambda item: item["sop_instance_uid"],
    )
    record: dict[str, Any] = {
        "format": "doorstep-report/1",
        "report_id": 12,
        "kind": "report",
        "amends": None,
        "request": {
            "id": 7,
            "specialty": "cardiology",
            "priority": "stat",
            "question": "Chest pain, rule out STEMI",
            "requested_at": "2026-12-01T10:00:00Z",
            "requested_by": "gp.river",
            "clinic": "River Clinic",
        },
        "patient": {"id": "A-1", "name": "Able^Alice", "birth_date": "1970-01-01", "sex": "F"},
        "study": {
            "study_uid": str(evidence.StudyInstanceUID),
            "accession_number": "",
            "study_date": "2026-11-30",
            "description": "Resting ECG",
            "modalities": [modality],
        },
        "signer": {
            "username": "dr.heart",
            "display_name": "Dr Hart",
            "organisation": "City Hospital",
            "specialties": ["cardiology"],
        },
        "signed_at": "2026-12-01T10:12:03Z",
        "findings": "Sinus rhythm, normal axis.",
        "impression": "Normal ECG",
        "text": "",
        "measurements": {
            "heart_rate_bpm": 61.1,
            "pr_ms": 152,
            "qrs_ms": 99,
            "qt_ms": 399,
            "qtc_ms": 402.5,
            "axis_deg": 49.1,
            "rhythm": "sinus rhythm",
        },
        "instances": instances,
    }
    record.update(changes)
    return record


def sop_classes_for(evidence: Dataset) -> dict[str, str]:
    """The SOP Class of each instance record_for covers."""
    return {
        str(evidence.SOPInstanceUID): str(evidence.SOPClassUID),
        OTHER_INSTANCE: CT_IMAGE_STORAGE,
    }


def make_pdf(*, odd: bool) -> bytes:
    """A real one-page PDF (reportlab) of odd or even length."""
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=True)
    page.drawString(72, 720, "ECG report")
    page.save()
    data = out.getvalue()
    if (len(data) % 2 == 1) != odd:
        data += b"\n"
    return data


def build(
    evidence: Dataset,
    record: Mapping[str, Any],
    pdf: bytes,
    sop_classes: Mapping[str, str] | None = None,
) -> Dataset:
    """The Encapsulated PDF instance with fixed UIDs."""
    return encapsulated_pdf(
        pdf=pdf,
        evidence=evidence,
        record=record,
        series_uid="1.2.826.0.1.3680043.8.498.100",
        sop_instance_uid="1.2.826.0.1.3680043.8.498.101",
        sop_classes=sop_classes,
    )


def dciodvfy(data: bytes, tmp_path: Path) -> list[str]:
    """dciodvfy's output lines for the Part 10 bytes."""
    tool = require_tool("dciodvfy")
    path = tmp_path / "object.dcm"
    path.write_bytes(data)
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return (run.stdout + run.stderr).splitlines()


@pytest.mark.parametrize("odd", [True, False])
def test_the_pdf_reads_back_byte_for_byte_with_the_padding_rules(odd: bool) -> None:
    pdf = make_pdf(odd=odd)
    assert len(pdf) % 2 == (1 if odd else 0)
    evidence = evidence_of(ECG_FILE)
    data = to_part10(build(evidence, record_for(evidence), pdf))
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.MediaStorageSOPClassUID == ENCAPSULATED_PDF_STORAGE
    assert ds.SOPClassUID == ENCAPSULATED_PDF_STORAGE
    assert ds.Modality == "DOC"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocumentLength == len(pdf)
    stored = bytes(ds.EncapsulatedDocument)
    assert len(stored) % 2 == 0
    assert stored == (pdf + b"\x00" if odd else pdf)
    assert pdf_bytes(ds) == pdf


@pytest.mark.parametrize("name", [ECG_FILE, CT_FILE])
def test_patient_and_study_are_copied_exactly_from_the_evidence(name: str) -> None:
    evidence = evidence_of(name)
    ds = build(evidence, record_for(evidence), make_pdf(odd=True))
    for keyword in PATIENT_STUDY_KEYWORDS:
        assert ds[keyword].value == evidence.get(keyword, ""), keyword
    patient_or_study = [
        element.keyword
        for element in ds
        if element.tag.group in (0x0010,) or element.keyword.startswith("Study")
    ]
    assert set(patient_or_study) <= set(PATIENT_STUDY_KEYWORDS)
    assert ds.SeriesInstanceUID != evidence.SeriesInstanceUID


def test_absent_study_attributes_are_present_and_empty() -> None:
    evidence = evidence_of(CT_FILE)
    del evidence.AccessionNumber
    del evidence.ReferringPhysicianName
    data = to_part10(build(evidence, record_for(evidence), make_pdf(odd=False)))
    ds = pydicom.dcmread(io.BytesIO(data))
    assert "AccessionNumber" in ds
    assert ds.AccessionNumber == ""
    assert ds.ReferringPhysicianName == ""


@pytest.mark.parametrize("name", [ECG_FILE, CT_FILE])
def test_dciodvfy_finds_no_error(name: str, tmp_path: Path) -> None:
    evidence = evidence_of(name)
    ds = build(evidence, record_for(evidence), make_pdf(odd=True), sop_classes_for(evidence))
    lines = dciodvfy(to_part10(ds), tmp_path)
    assert "EncapsulatedPDF" in lines
    assert [line for line in lines if line.startswith("Error")] == []


def test_the_document_says_what_it_is_and_when_it_was_signed() -> None:
    evidence = evidence_of(ECG_FILE)
    ds = build(
        evidence, record_for(evidence, signed_at="2026-12-01T11:12:03+01:00"), make_pdf(odd=True)
    )
    assert ds.DocumentTitle == "ECG report"
    code = ds.ConceptNameCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "11524-6",
        "LN",
        "EKG study",
    )
    assert ds.BurnedInAnnotation == "YES"
    assert ds.Manufacturer == "Doorstep"
    assert ds.VerificationFlag == "VERIFIED"
    assert (ds.ContentDate, ds.ContentTime) == ("20261201", "101203")
    assert ds.AcquisitionDateTime == "20261201101203+0000"
    assert ds.TimezoneOffsetFromUTC == "+0000"
    assert ds.SeriesNumber == 9001
    assert ds.InstanceNumber == 1


def test_an_imaging_addendum_has_its_own_title_and_code() -> None:
    evidence = evidence_of(CT_FILE)
    ds = build(
        evidence,
        record_for(evidence, kind="addendum", amends=11, text="Correction."),
        make_pdf(odd=False),
    )
    assert ds.DocumentTitle == "Addendum"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert ds.ConceptNameCodeSequence[0].CodeMeaning == "Diagnostic imaging study"


def test_the_covered_instances_are_the_source_instances() -> None:
    evidence = evidence_of(ECG_FILE)
    record = record_for(evidence)
    ds = build(evidence, record, make_pdf(odd=True), sop_classes_for(evidence))
    listed = [
        (item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
        for item in ds.SourceInstanceSequence
    ]
    assert listed == [
        (sop_classes_for(evidence)[item["sop_instance_uid"]], item["sop_instance_uid"])
        for item in record["instances"]
    ]
    assert "SourceInstanceSequence" not in build(evidence, record, make_pdf(odd=True))


def test_an_instance_of_unknown_sop_class_is_refused() -> None:
    evidence = evidence_of(ECG_FILE)
    with pytest.raises(ValueError, match=OTHER_INSTANCE):
        build(
            evidence,
            record_for(evidence),
            make_pdf(odd=True),
            {str(evidence.SOPInstanceUID): str(evidence.SOPClassUID)},
        )


def test_something_that_is_not_a_pdf_is_refused() -> None:
    evidence = evidence_of(ECG_FILE)
    with pytest.raises(ValueError, match="not a PDF"):
        build(evidence, record_for(evidence), b"<html></html>")


def test_the_same_input_gives_the_same_bytes() -> None:
    evidence = evidence_of(ECG_FILE)
    pdf = make_pdf(odd=True)
    first = to_part10(build(evidence, record_for(evidence), pdf, sop_classes_for(evidence)))
    second = to_part10(build(evidence, record_for(evidence), pdf, sop_classes_for(evidence)))
    assert first == second
