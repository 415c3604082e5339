"""HL7 aECG reading: the shared samples, crafted documents, and every refusal's reason."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pytest
from pydicom import dcmread

from dicom_tools.aecg import AecgError, aecg_to_dicom, parse_timestamp, read_aecg
from dicom_tools.ecg_encoding import TWELVE_LEAD_ECG, EcgEncodingError, PatientIdentity
from tests.dicom_tools.aecg_documents import (
    ENTITY_EXPANSION,
    EXTERNAL_DTD,
    EXTERNAL_ENTITY,
    document,
    sample,
    sine_digits,
    subject,
    twelve_leads,
)

STANDARD = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.mark.parametrize("name", ["hl7-aecg-example.xml", "fda-aecg-subject1.xml"])
def test_the_shared_samples_read_as_12_lead_rhythm_recordings(name: str) -> None:
    recording = read_aecg(sample(name))
    assert list(recording.leads) == STANDARD
    assert recording.sampling_frequency == 500.0
    assert recording.samples == 5000
    assert recording.duration_s == 10.0
    assert recording.resolution_uv == 2.5
    assert recording.subject is not None
    assert recording.subject.name == "Clark"
    assert recording.subject.birth_date == "19530508"
    assert recording.subject.sex == "M"
    assert recording.acquired == datetime(2002, 11, 22, 9, 10)
    assert recording.manufacturer == "Mortara Instrument, Inc."
    assert recording.model == "ELI250"
    # the representative beat's global measurements, not the per-beat repetitions
    assert recording.measurements == {
        "pr_ms": 148.0,
        "qrs_ms": 120.0,
        "qt_ms": 420.0,
        "qtc_ms": 443.0,
        "p_axis_deg": 44.0,
        "qrs_axis_deg": -61.0,
        "t_axis_deg": 86.0,
    }
    assert recording.statements == ("Sinus Rhythm",)
    assert any("derived series" in note for note in recording.notes)


def test_the_example_values_are_origin_plus_scale_times_digit() -> None:
    recording = read_aecg(sample("hl7-aecg-example.xml"))
    # The first digits of lead I in the file are "-2 -2 -2 -2 -3 -4 -3 -5" at 2.5 uV.
    assert recording.leads["I"][:8].tolist() == [-5, -5, -5, -5, -7.5, -10, -7.5, -12.5]


def test_the_minimum_document_is_refused_as_too_short_to_read() -> None:
    """Decision: one lead of 13 samples (26 ms) holds no beat; it is refused, clearly."""
    with pytest.raises(AecgError) as refused:
        read_aecg(sample("fda-aecg-minimum.xml"))
    assert refused.value.reason == "too_short"
    assert "26 ms" in refused.value.message


def test_a_one_lead_rhythm_strip_is_accepted_as_a_one_lead_ecg() -> None:
    recording, data = aecg_to_dicom(document({"II": sine_digits(2500)}))
    assert list(recording.leads) == ["II"]
    ds = dcmread(io.BytesIO(data))
    assert ds.WaveformSequence[0].NumberOfWaveformChannels == 1
    assert ds.WaveformSequence[0].ChannelDefinitionSequence[0].ChannelSourceSequence[
        0
    ].CodeMeaning == ("Lead II")


def test_absent_derived_leads_are_not_invented() -> None:
    recording, data = aecg_to_dicom(document(twelve_leads()))
    assert list(recording.leads) == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    ds = dcmread(io.BytesIO(data))
    group = ds.WaveformSequence[0]
    assert group.NumberOfWaveformChannels == 8
    meanings = [c.ChannelSourceSequence[0].CodeMeaning for c in group.ChannelDefinitionSequence]
    assert meanings == ["Lead I", "Lead II", *(f"Lead V{n}" for n in range(1, 7))]


def test_the_conversion_is_exact_at_the_documents_own_scale() -> None:
    """The aECG quantum (2.5 uV) becomes the channel sensitivity: the round trip is exact."""
    recording, data = aecg_to_dicom(sample("hl7-aecg-example.xml"))
    ds = dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == TWELVE_LEAD_ECG
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    expected = np.stack(list(recording.leads.values()), axis=1)
    assert np.array_equal(ds.waveform_array(0), expected)
    assert str(ds.PatientName) == "Clark"
    assert ds.PatientID == "SBJ-123"
    assert (ds.PatientBirthDate, ds.PatientSex) == ("19530508", "M")
    assert ds.AcquisitionDateTime == "20021122091000"
    assert ds.Manufacturer == "Mortara Instrument, Inc."
    texts = [a.get("UnformattedTextValue") for a in ds.WaveformAnnotationSequence]
    assert "Sinus Rhythm" in texts
    numbers = {
        a.ConceptNameCodeSequence[0].CodeMeaning: float(a.NumericValue)
        for a in ds.WaveformAnnotationSequence
        if "NumericValue" in a
    }
    assert numbers == {
        "PR Interval": 148,
        "QRS Duration": 120,
        "QT Interval": 420,
        "QTc Interval": 443,
        "P Axis": 44,
        "QRS Axis": -61,
        "T Axis": 86,
    }


@pytest.mark.parametrize(
    ("unit", "scale", "uv_per_digit"),
    [("uV", "5", 5.0), ("mV", "0.005", 5.0), ("V", "0.000005", 5.0)],
)
def test_voltage_units_are_converted_to_microvolts(
    unit: str, scale: str, uv_per_digit: float
) -> None:
    digits = sine_digits(1000)
    recording = read_aecg(document({"I": digits}, scale=scale, unit=unit))
    assert np.allclose(recording.leads["I"], np.array(digits) * uv_per_digit, rtol=1e-9)


def test_a_millisecond_increment_gives_the_sampling_frequency() -> None:
    recording = read_aecg(
        document({"I": sine_digits(1000)}, increment='<increment value="1" unit="ms"/>')
    )
    assert recording.sampling_frequency == 1000.0


def test_subject_demographics_become_the_patient_else_the_uploaders_choice() -> None:
    chosen = PatientIdentity(name="Okafor^Grace", patient_id="RC-0001", birth_date="19560314")
    named = document({"I": sine_digits()}, subject=subject("Doe^Jane", "S-9", "19800102", "F"))
    _, data = aecg_to_dicom(named, patient=chosen)
    ds = dcmread(io.BytesIO(data))
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == (
        "Doe^Jane",
        "S-9",
        "19800102",
        "F",
    )
    _, data = aecg_to_dicom(document({"I": sine_digits()}), patient=chosen)
    ds = dcmread(io.BytesIO(data))
    assert (str(ds.PatientName), ds.PatientID) == ("Okafor^Grace", "RC-0001")
    _, data = aecg_to_dicom(document({"I": sine_digits()}))
    ds = dcmread(io.BytesIO(data))
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == ("", "", "")


def _timed(increment: str) -> bytes:
    return document({"I": sine_digits()}, increment=increment)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (ENTITY_EXPANSION, "forbidden_xml"),
        (EXTERNAL_ENTITY, "forbidden_xml"),
        (EXTERNAL_DTD, "forbidden_xml"),
        (b"", "not_xml"),
        (b"not xml at all", "not_xml"),
        (document({"I": sine_digits()})[:-40], "not_xml"),
        (b"\xff\xfe\x00<", "not_xml"),
        (document({"I": sine_digits()}, namespace="urn:example"), "not_aecg"),
        (document({"I": sine_digits()}, root="ClinicalDocument"), "not_aecg"),
        (b'<AnnotatedECG xmlns="urn:hl7-org:v3"/>', "no_leads"),
        (document({}), "no_leads"),
        (document({"I": sine_digits(2500), "II": sine_digits(2400)}), "inconsistent_leads"),
        (document({"I": sine_digits()}).replace(b"SLIST_PQ", b"GLIST_PQ"), "invalid_value"),
        (document({"I": sine_digits()}, unit="furlong"), "unknown_unit"),
        (
            _timed('<increment value="2" unit="fortnight"/>'),
            "unknown_unit",
        ),
        (_timed(""), "no_sampling_rate"),
        (_timed('<increment value="0" unit="s"/>'), "no_sampling_rate"),
        (document({"I": sine_digits()}, scale="abc"), "invalid_value"),
        (document({"I": sine_digits()}, scale="nan"), "invalid_value"),
        (document({"I": [1, 2, 3] * 1000}).replace(b"1 2 3", b"1 x 3", 1), "invalid_value"),
        (document({"I": [0] * 16385}), "too_large"),
        (_timed('<increment value="1" unit="us"/>'), "too_large"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_refusals_carry_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AecgError) as refused:
        read_aecg(data)
    assert refused.value.reason == reason
    assert refused.value.message


def test_a_lead_given_twice_is_refused() -> None:
    twice = document({"I": sine_digits()}, extra_sequences=_lead("MDC_ECG_LEAD_I"))
    with pytest.raises(AecgError) as refused:
        read_aecg(twice)
    assert refused.value.reason == "inconsistent_leads"


def _lead(code: str) -> str:
    from tests.dicom_tools.aecg_documents import sequence

    return sequence(code, sine_digits())


def test_non_standard_leads_are_noted_not_imported() -> None:
    extra = document({"I": sine_digits()}, extra_sequences=_lead("MDC_ECG_LEAD_V4R"))
    recording = read_aecg(extra)
    assert list(recording.leads) == ["I"]
    assert any("V4R" in note for note in recording.notes)


def test_a_recording_beyond_the_iod_frequency_is_refused_by_the_encoder() -> None:
    fast = document({"I": sine_digits(4000)}, increment='<increment value="0.5" unit="ms"/>')
    with pytest.raises(EcgEncodingError) as refused:
        aecg_to_dicom(fast)
    assert refused.value.reason == "unsupported_sampling_frequency"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20021122091000", datetime(2002, 11, 22, 9, 10)),
        ("20021122091000.250", datetime(2002, 11, 22, 9, 10, 0, 250000)),
        ("200211220737", datetime(2002, 11, 22, 7, 37)),
        ("20020618", datetime(2002, 6, 18)),
        ("20021322", None),
        ("", None),
        (None, None),
    ],
)
def test_hl7_timestamps(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_a_flood_of_elements_is_refused_while_parsing() -> None:
    flood = b'<AnnotatedECG xmlns="urn:hl7-org:v3">' + b"<a/>" * 300_000 + b"</AnnotatedECG>"
    with pytest.raises(AecgError) as refused:
        read_aecg(flood)
    assert refused.value.reason == "too_large"


def test_a_lead_of_millions_of_digits_is_refused_without_reading_them_all() -> None:
    lead = document({"I": [0]}).replace(b"<digits>0", b"<digits>" + b"7 " * 2_000_000)
    with pytest.raises(AecgError) as refused:
        read_aecg(lead)
    assert refused.value.reason == "too_large"
    assert "16384" in refused.value.message


def test_only_representative_beats_at_the_top_are_not_a_recording() -> None:
    beats = document({"I": sine_digits()}, series_code="REPRESENTATIVE_BEAT")
    with pytest.raises(AecgError) as refused:
        read_aecg(beats)
    assert refused.value.reason == "no_leads"


def test_the_ecg_reader_reads_the_converted_instance() -> None:
    """Round trip through dicom_tools.ecg: the same microvolts, derived leads computed there."""
    from dicom_tools.ecg import read_ecg

    recording, data = aecg_to_dicom(document(twelve_leads()))
    ecg = read_ecg(data)
    assert ecg.sampling_frequency == 500.0
    stored = {lead.name: lead for lead in ecg.leads if not lead.derived}
    assert list(stored) == list(recording.leads)
    for name, values in recording.leads.items():
        assert np.array_equal(stored[name].samples_uv, values), name  # exact at 2.5 uV
    assert {lead.name for lead in ecg.leads if lead.derived} == {"III", "aVR", "aVL", "aVF"}
    example = read_ecg(aecg_to_dicom(sample("hl7-aecg-example.xml"))[1])
    assert (example.device.pr_ms, example.device.qrs_ms, example.device.qrs_axis_deg) == (
        148.0,
        120.0,
        -61.0,
    )
    assert example.device.statements == ("Sinus Rhythm",)
