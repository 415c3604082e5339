"""The Comprehensive SR of a signed report: dciodvfy, dsrdump and the content tree read back."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicom_tools.report_objects import (
    COMPREHENSIVE_SR_STORAGE,
    PATIENT_STUDY_KEYWORDS,
    report_sr,
    to_part10,
)
from tests.dicom_tools.test_report_objects import (
    CT_FILE,
    ECG_FILE,
    OTHER_INSTANCE,
    dciodvfy,
    evidence_of,
    record_for,
    sop_classes_for,
)
from tests.support import require_tool

HOSTILE = " <script>alert('x')</script>\r\n王小明 ) Tj ET %%EOF \\ ^ = |"
LONG = "Sinus rhythm. " * 5000 + "End."
"""70,004 characters: beyond 64 KiB, which a UT TEXT value holds."""


def build(
    evidence: Dataset,
    record: Mapping[str, Any],
    series_uids: Mapping[str, str] | None = None,
) -> Dataset:
    """The SR with fixed UIDs."""
    return report_sr(
        evidence=evidence,
        record=record,
        series_uid="1.2.826.0.1.3680043.8.498.200",
        sop_instance_uid="1.2.826.0.1.3680043.8.498.201",
        sop_classes=sop_classes_for(evidence),
        series_uids=series_uids,
    )


def read_back(ds: Dataset) -> Dataset:
    """The dataset written as Part 10 and read again."""
    return pydicom.dcmread(io.BytesIO(to_part10(ds)))


def walk(items: Any) -> Iterator[Dataset]:
    """Every content item of the tree, depth first."""
    for item in items:
        yield item
        yield from walk(item.get("ContentSequence") or [])


def items_named(ds: Dataset, meaning: str) -> list[Dataset]:
    """The content items whose concept name has this meaning."""
    return [
        item
        for item in walk(ds.ContentSequence)
        if item.ConceptNameCodeSequence[0].CodeMeaning == meaning
    ]


def dsrdump(data: bytes, tmp_path: Path) -> str:
    """dsrdump's rendering of the SR, values in full and in UTF-8."""
    tool = require_tool("dsrdump")
    path = tmp_path / "sr.dcm"
    path.write_bytes(data)
    run = subprocess.run(
        [tool, "+U8", "+Pl", str(path)], capture_output=True, text=True, check=True
    )
    return run.stdout


@pytest.mark.parametrize("name", [ECG_FILE, CT_FILE])
def test_dciodvfy_finds_no_error(name: str, tmp_path: Path) -> None:
    evidence = evidence_of(name)
    lines = dciodvfy(to_part10(build(evidence, record_for(evidence))), tmp_path)
    assert "ComprehensiveSR" in lines
    assert [line for line in lines if line.startswith("Error")] == []


def test_dsrdump_shows_the_measurements_with_their_units(tmp_path: Path) -> None:
    evidence = evidence_of(ECG_FILE)
    shown = dsrdump(to_part10(build(evidence, record_for(evidence))), tmp_path)
    for line in (
        '<contains NUM:(,,"Heart rate")="61.1" ({beats}/min,UCUM,"{beats}/min")>',
        '<contains NUM:(,,"P-R Interval")="152',
        '<contains NUM:(,,"QRS duration")="99',
        '<contains NUM:(,,"Q-T interval")="399',
        '<contains NUM:(,,"Q-T interval corrected")="402.5" (ms,UCUM,"ms")>',
        '<contains NUM:(,,"QRS axis")="49.1" (deg,UCUM,"deg")>',
        '<contains TEXT:(,,"Finding")="rhythm: sinus rhythm">',
        '<contains TEXT:(,,"Impression")="Normal ECG">',
        '<has obs context PNAME:(,,"Person Observer Name")="Dr Hart^">',
        "Completion Flag     : COMPLETE",
        "Verification Flag   : VERIFIED",
        "Verifying Observers : 2026-12-01 10:12:03 +00:00, Dr Hart^, City Hospital",
    ):
        assert line in shown, line


def test_numbers_carry_loinc_codes_and_ucum_units() -> None:
    evidence = evidence_of(ECG_FILE)
    ds = read_back(build(evidence, record_for(evidence)))
    numbers = {
        item.ConceptNameCodeSequence[0].CodeValue: (
            float(item.MeasuredValueSequence[0].NumericValue),
            item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue,
        )
        for item in walk(ds.ContentSequence)
        if item.ValueType == "NUM"
    }
    assert numbers == {
        "8867-4": (61.1, "{beats}/min"),
        "8625-6": (152.0, "ms"),
        "8633-0": (99.0, "ms"),
        "8634-8": (399.0, "ms"),
        "8636-3": (402.5, "ms"),
        "8632-2": (49.1, "deg"),
    }
    for item in walk(ds.ContentSequence):
        if item.ValueType == "NUM":
            assert item.ConceptNameCodeSequence[0].CodingSchemeDesignator == "LN"
            unit = item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
            assert unit.CodingSchemeDesignator == "UCUM"


def test_unknown_and_textual_measurements_become_text_not_lost() -> None:
    evidence = evidence_of(ECG_FILE)
    measurements = {"rr_ms": 982, "st_elevation_mm": 1.5, "rhythm": "AF", "paced": False}
    ds = read_back(build(evidence, record_for(evidence, measurements=measurements)))
    texts = [item.TextValue for item in items_named(ds, "Finding")]
    assert "rhythm: AF" in texts
    assert "st_elevation_mm: 1.5" in texts
    assert "paced: False" in texts
    [rr] = items_named(ds, "R-R interval")
    assert rr.ConceptNameCodeSequence[0].CodeValue == "8637-1"
    assert float(rr.MeasuredValueSequence[0].NumericValue) == 982.0


def test_a_qtc_formula_is_a_measurement_method() -> None:
    evidence = evidence_of(ECG_FILE)
    record = record_for(evidence, measurements={"qtc_bazett_ms": 410, "qtc_fridericia_ms": 404})
    ds = read_back(build(evidence, record))
    methods = {
        float(item.MeasuredValueSequence[0].NumericValue): item.ContentSequence[0].TextValue
        for item in items_named(ds, "Q-T interval corrected")
    }
    assert methods == {410.0: "Bazett", 404.0: "Fridericia"}


@pytest.mark.parametrize("text", [HOSTILE, LONG], ids=["hostile", "long"])
def test_free_text_round_trips_exactly(text: str, tmp_path: Path) -> None:
    evidence = evidence_of(ECG_FILE)
    record = record_for(evidence, findings=text, impression=text)
    data = to_part10(build(evidence, record))
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    [finding] = [item for item in items_named(ds, "Finding") if item.TextValue == text]
    assert finding.TextValue == text
    assert [item.TextValue for item in items_named(ds, "Impression")] == [text]
    if text is HOSTILE:
        assert "王小明" in dsrdump(data, tmp_path)
    assert [line for line in dciodvfy(data, tmp_path) if line.startswith("Error")] == []


def test_the_signer_observed_and_verified_the_document() -> None:
    evidence = evidence_of(ECG_FILE)
    ds = read_back(build(evidence, record_for(evidence, signed_at="2026-12-01T11:12:03+01:00")))
    assert ds.SOPClassUID == COMPREHENSIVE_SR_STORAGE
    assert ds.Modality == "SR"
    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == (
        "COMPLETE",
        "VERIFIED",
        "FINAL",
    )
    [observer] = ds.VerifyingObserverSequence
    assert observer.VerifyingObserverName == "Dr Hart^"
    assert observer.VerifyingOrganization == "City Hospital"
    assert observer.VerificationDateTime == "20261201101203+0000"
    assert (ds.ContentDate, ds.ContentTime) == ("20261201", "101203")
    assert [item.PersonName for item in items_named(ds, "Person Observer Name")] == ["Dr Hart^"]
    organisation = items_named(ds, "Person Observer's Organization Name")
    assert [item.TextValue for item in organisation] == ["City Hospital"]
    assert ds.ConceptNameCodeSequence[0].CodeValue == "11524-6"
    assert (ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer) == (9002, 1, "Doorstep")


def test_the_evidence_lists_every_covered_instance_in_its_series() -> None:
    evidence = evidence_of(ECG_FILE)
    record = record_for(evidence)
    other_series = "1.2.826.0.1.3680043.8.498.300"
    ds = read_back(build(evidence, record, series_uids={OTHER_INSTANCE: other_series}))
    [study] = ds.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == evidence.StudyInstanceUID
    listed = {
        (series.SeriesInstanceUID, item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert listed == {
        (evidence.SeriesInstanceUID, evidence.SOPClassUID, evidence.SOPInstanceUID),
        (other_series, "1.2.840.10008.5.1.4.1.1.2", OTHER_INSTANCE),
    }
    assert "PertinentOtherEvidenceSequence" not in ds


@pytest.mark.parametrize("name", [ECG_FILE, CT_FILE])
def test_patient_and_study_are_copied_exactly_from_the_evidence(name: str) -> None:
    evidence = evidence_of(name)
    ds = read_back(build(evidence, record_for(evidence)))
    for keyword in PATIENT_STUDY_KEYWORDS:
        assert ds[keyword].value == evidence.get(keyword, ""), keyword
    patient_or_study = [
        element.keyword
        for element in ds
        if element.tag.group == 0x0010 or element.keyword.startswith("Study")
    ]
    assert set(patient_or_study) <= set(PATIENT_STUDY_KEYWORDS)


def test_an_addendum_carries_its_text() -> None:
    evidence = evidence_of(CT_FILE)
    record = record_for(
        evidence,
        kind="addendum",
        amends=11,
        text="Correction: " + HOSTILE,
        findings="",
        impression="",
        measurements={},
    )
    ds = read_back(build(evidence, record))
    assert [item.TextValue for item in items_named(ds, "Addendum")] == ["Correction: " + HOSTILE]
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert items_named(ds, "Findings") == []


def test_text_is_made_fit_for_ut_and_nothing_else_changes(tmp_path: Path) -> None:
    evidence = evidence_of(ECG_FILE)
    record = record_for(evidence, findings="  Normal.\tQT\x07 long.\f\n  ")
    built = build(evidence, record)
    [finding] = [item.TextValue for item in items_named(built, "Finding")][:1]
    assert finding == "  Normal. QT\ufffd long.\f\n"
    data = to_part10(built)
    assert [item.TextValue for item in items_named(read_back(built), "Finding")][:1] == [finding]
    assert [line for line in dciodvfy(data, tmp_path) if line.startswith("Error")] == []


def test_names_are_fit_for_lo_and_pn(tmp_path: Path) -> None:
    evidence = evidence_of(ECG_FILE)
    signer = {
        "username": "x",
        "display_name": "Dr\tBack\\slash " + "N" * 80,
        "organisation": "City\\Hospital\n",
    }
    ds = read_back(build(evidence, record_for(evidence, signer=signer)))
    [observer] = ds.VerifyingObserverSequence
    assert observer.VerifyingOrganization == "City/Hospital"
    name = str(observer.VerifyingObserverName)
    assert name.startswith("Dr Back/slash NNN")
    assert name.endswith("^")
    assert len(name) == 64
    data = to_part10(ds)
    assert [line for line in dciodvfy(data, tmp_path) if line.startswith("Error")] == []


def test_a_report_covering_nothing_is_refused() -> None:
    evidence = evidence_of(ECG_FILE)
    with pytest.raises(ValueError, match="at least one instance"):
        build(evidence, record_for(evidence, instances=[]))


def test_the_same_input_gives_the_same_bytes() -> None:
    evidence = evidence_of(ECG_FILE)
    first = to_part10(build(evidence, record_for(evidence)))
    second = to_part10(build(evidence, record_for(evidence)))
    assert first == second
