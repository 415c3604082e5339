"""The 12-Lead ECG encoder: IOD attributes, round trip through pydicom, and its limits."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pytest
from pydicom import dcmread

from dicom_tools.ecg_encoding import (
    LEAD_SOURCES,
    TWELVE_LEAD_ECG,
    EcgEncodingError,
    PatientIdentity,
    part10,
    sensitivity_for,
    twelve_lead_ecg,
)
from dicom_tools.ingest import inspect_part10

Leads = dict[str, npt.NDArray[np.float64]]


def _leads(names: list[str], samples: int = 5000, *, peak: float = 1500.0) -> Leads:
    rng = np.random.default_rng(9)
    t = np.arange(samples) / 500.0
    return {
        name: peak * np.sin(2 * np.pi * (1 + k / 7) * t) + rng.normal(0, 20, samples)
        for k, name in enumerate(names)
    }


def test_the_dataset_is_a_complete_12_lead_ecg_instance() -> None:
    patient = PatientIdentity(name="Okafor^Grace", patient_id="RC-0001", birth_date="19560314")
    ds = twelve_lead_ecg(
        _leads(list(LEAD_SOURCES)),
        500.0,
        patient=patient,
        study_uid="1.2.3.4",
        acquired=datetime(2024, 3, 5, 14, 30),
        manufacturer="Acme",
        now=datetime(2024, 3, 5, 15, 0),
    )
    assert ds.SOPClassUID == TWELVE_LEAD_ECG
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.StudyInstanceUID == "1.2.3.4"
    assert ds.SeriesInstanceUID != ds.SOPInstanceUID
    assert ds.Modality == "ECG"
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == (
        "Okafor^Grace",
        "RC-0001",
        "19560314",
    )
    assert ds.AcquisitionDateTime == "20240305143000"
    assert (ds.ContentDate, ds.ContentTime) == ("20240305", "143000")
    assert (ds.InstanceCreationDate, ds.InstanceCreationTime) == ("20240305", "150000")
    for keyword in ("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber", "SeriesNumber", "Manufacturer", "InstanceNumber",
                    "AcquisitionContextSequence", "PatientSex"):  # fmt: skip
        assert keyword in ds, keyword
    group = ds.WaveformSequence[0]
    assert (group.WaveformBitsAllocated, group.WaveformSampleInterpretation) == (16, "SS")
    assert group.NumberOfWaveformChannels == 12
    assert group.NumberOfWaveformSamples == 5000
    assert float(group.SamplingFrequency) == 500.0
    channel = group.ChannelDefinitionSequence[0]
    source = channel.ChannelSourceSequence[0]
    assert (source.CodeValue, source.CodingSchemeDesignator, source.CodeMeaning) == (
        "5.6.3-9-1",
        "SCPECG",
        "Lead I",
    )
    unit = channel.ChannelSensitivityUnitsSequence[0]
    assert (unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning) == (
        "uV",
        "UCUM",
        "microvolt",
    )
    codes = [c.ChannelSourceSequence[0].CodeValue for c in group.ChannelDefinitionSequence]
    assert codes == [c.value for c in LEAD_SOURCES.values()]
    assert "WaveformAnnotationSequence" not in ds


def test_part10_is_explicit_vr_little_endian_and_the_archive_accepts_it() -> None:
    data = part10(twelve_lead_ecg(_leads(["I", "II"]), 500.0))
    assert data[128:132] == b"DICM"
    info = inspect_part10(data)
    assert info.sop_class_uid == TWELVE_LEAD_ECG
    assert dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


@pytest.mark.parametrize("sensitivity", [None, 2.5, 0.5])
def test_the_round_trip_is_within_half_a_stored_unit(sensitivity: float | None) -> None:
    leads = _leads(list(LEAD_SOURCES))
    ds = dcmread(io.BytesIO(part10(twelve_lead_ecg(leads, 500.0, sensitivity_uv=sensitivity))))
    lsb = float(ds.WaveformSequence[0].ChannelDefinitionSequence[0].ChannelSensitivity)
    assert lsb == (sensitivity or 1.0)
    error = np.abs(ds.waveform_array(0) - np.stack(list(leads.values()), axis=1))
    assert float(error.max()) <= 0.5 * lsb + 1e-9  # tolerance: 0.5 LSB (rounding)


def test_leads_are_stored_in_standard_order_whatever_the_mapping_order() -> None:
    leads = _leads(["V6", "II", "I"])
    ds = twelve_lead_ecg(leads, 500.0)
    group = ds.WaveformSequence[0]
    meanings = [c.ChannelSourceSequence[0].CodeMeaning for c in group.ChannelDefinitionSequence]
    assert meanings == ["Lead I", "Lead II", "Lead V6"]
    assert np.allclose(ds.waveform_array(0)[:, 2], leads["V6"], atol=0.5)


def test_a_range_beyond_16_bits_at_1_uv_takes_a_coarser_sensitivity() -> None:
    assert sensitivity_for(30_000.0) == 1.0
    assert sensitivity_for(40_000.0) == 1.25
    assert sensitivity_for(40_000.0, 2.5) == 2.5
    assert sensitivity_for(100_000.0, 2.5) == 5.0
    with pytest.raises(EcgEncodingError) as refused:
        sensitivity_for(5e6)
    assert refused.value.reason == "out_of_range"


def test_statements_and_device_measurements_become_waveform_annotations() -> None:
    ds = twelve_lead_ecg(
        _leads(["I", "II"]),
        500.0,
        statements=["Sinus rhythm"],
        device_measurements={"heart_rate_bpm": 61, "pr_ms": 148, "qrs_axis_deg": -61},
    )
    items = ds.WaveformAnnotationSequence
    assert items[0].UnformattedTextValue == "Sinus rhythm"
    numbers = {
        i.ConceptNameCodeSequence[0].CodeMeaning: (
            float(i.NumericValue),
            i.MeasurementUnitsCodeSequence[0].CodeValue,
        )
        for i in items[1:]
    }
    assert numbers == {
        "Heart rate": (61.0, "/min"),
        "PR Interval": (148.0, "ms"),
        "QRS Axis": (-61.0, "deg"),
    }


@pytest.mark.parametrize(
    ("leads", "frequency", "reason"),
    [
        ({}, 500.0, "no_leads"),
        ({"I": np.zeros(0)}, 500.0, "no_leads"),
        (
            {**_leads(list(LEAD_SOURCES)), "V7": np.zeros(5000)},
            500.0,
            "too_many_leads",
        ),
        (
            {f"L{n}": np.zeros(100) for n in range(16)},
            500.0,
            "too_many_leads",
        ),
        ({"X": np.zeros(100)}, 500.0, "unknown_lead"),
        ({"I": np.zeros(100), "II": np.zeros(99)}, 500.0, "inconsistent_leads"),
        ({"I": np.zeros((10, 2))}, 500.0, "inconsistent_leads"),
        ({"I": np.zeros(100)}, 0.0, "unsupported_sampling_frequency"),
        ({"I": np.zeros(100)}, 2000.0, "unsupported_sampling_frequency"),
        ({"I": np.zeros(100)}, float("nan"), "unsupported_sampling_frequency"),
        ({"I": np.zeros(16385)}, 500.0, "too_many_samples"),
        ({"I": np.array([0.0, np.nan])}, 500.0, "invalid_value"),
        ({"I": np.array([0.0, 4e6])}, 500.0, "out_of_range"),
    ],
)
def test_refusals_carry_a_reason(leads: Leads, frequency: float, reason: str) -> None:
    with pytest.raises(EcgEncodingError) as refused:
        twelve_lead_ecg(leads, frequency)
    assert refused.value.reason == reason


def test_an_unknown_measurement_is_refused() -> None:
    with pytest.raises(EcgEncodingError) as refused:
        twelve_lead_ecg(_leads(["I"]), 500.0, device_measurements={"st_elevation": 1.0})
    assert refused.value.reason == "invalid_value"


def test_each_instance_gets_new_uids() -> None:
    first, second = (twelve_lead_ecg(_leads(["I"]), 500.0) for _ in range(2))
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.StudyInstanceUID != second.StudyInstanceUID
