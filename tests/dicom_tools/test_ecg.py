"""dicom_tools.ecg: calibrated leads, lead names, derived leads, device measurements, refusals.

References are computed here with numpy from the stored bytes, and checked against
pydicom's ``Dataset.waveform_array`` (stored x sensitivity x correction + baseline,
in the channel's units). Calibrated values are compared with a tolerance of 1e-9 uV
(floating point of a product of a few terms; a wrong scale is off by far more).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import get_args

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRBigEndian

from dicom_tools.byte_order import swapped
from dicom_tools.ecg import LEAD_NAMES, EcgError, EcgReason, read_ecg, whole_microvolts
from dicom_tools.ecg_measurements import measure
from tests.dicom_tools.ecg_files import (
    AMBULATORY_ECG,
    GENERAL_ECG,
    MEASUREMENT_KEYS,
    channel,
    code,
    ecg_with,
    encoded,
    group,
    synthetic,
    waveform_ecg,
)
from tests.dicom_tools.part10 import bundled

TOLERANCE_UV = 1e-9


def test_waveform_ecg_is_its_rhythm_group_calibrated_like_pydicom() -> None:
    ds = waveform_ecg()
    ecg = read_ecg(bundled("waveform_ecg.dcm").read_bytes())
    assert [lead.name for lead in ecg.leads] == list(LEAD_NAMES)
    assert not any(lead.derived for lead in ecg.leads)
    assert (ecg.sampling_frequency, ecg.duration_s) == (1000.0, 10.0)
    rhythm = ds.WaveformSequence[0]
    assert rhythm.MultiplexGroupLabel == "RHYTHM"
    stored = np.frombuffer(rhythm.WaveformData, dtype="<i2").reshape(10000, 12)
    independent = stored.astype(np.float64) * 1.25  # 1.25 uV per unit, correction 1, baseline 0
    ours = np.stack([lead.samples_uv for lead in ecg.leads], axis=1)
    np.testing.assert_allclose(ours, independent, rtol=0, atol=TOLERANCE_UV)
    np.testing.assert_allclose(ours, ds.waveform_array(0), rtol=0, atol=TOLERANCE_UV)
    assert any("median beat" in note and "MEDIAN BEAT" in note for note in ecg.notes)


def test_the_rhythm_group_is_shown_even_when_the_median_beat_comes_first() -> None:
    ds = waveform_ecg()
    rhythm, median = ds.WaveformSequence
    ds.WaveformSequence = DicomSequence([median, rhythm])
    ecg = read_ecg(encoded(ds))
    assert ecg.duration_s == 10.0
    np.testing.assert_allclose(ecg.leads[1].samples_uv, waveform_ecg().waveform_array(0)[:, 1])


def test_the_device_s_own_measurements_and_statements() -> None:
    device = read_ecg(bundled("waveform_ecg.dcm").read_bytes()).device
    assert device.as_dict() == {
        "heart_rate_bpm": 61.1,  # 60000 / RR 982 ms: the file states RR, not the rate
        "rr_ms": 982.0,
        "pr_ms": 161.0,
        "qrs_ms": 75.0,
        "qt_ms": 368.0,
        "qtc_bazett_ms": None,
        "qtc_fridericia_ms": None,
        "qrs_axis_deg": 52.0,
        "rhythm": None,
        "qtc_ms": 370.0,  # SCP-ECG 5.10.2.5-5 "QTc Interval" names no formula
        "p_axis_deg": 74.0,
        "t_axis_deg": 57.0,
        "statements": ["RITMO SINUSALE", "ECG NORMALE"],
    }


def _annotation(value: str, scheme: str, meaning: str, number: float, unit: str) -> Dataset:
    item = Dataset()
    item.ConceptNameCodeSequence = DicomSequence([code(value, scheme, meaning)])
    item.NumericValue = number
    item.MeasurementUnitsCodeSequence = DicomSequence([code(unit, "UCUM", unit)])
    item.ReferencedWaveformChannels = [1, 0]
    item.AnnotationGroupNumber = 1
    return item


def test_mdc_codes_millivolts_correction_and_baseline() -> None:
    names = ["I", "II", "V1"]
    raw = synthetic(1000, 3)
    channels = [
        channel(n, scheme="MDC", sensitivity=0.005, units="mV", correction=1.02, baseline=0.1)
        for n in names
    ]
    ds = ecg_with([group(channels, raw, frequency=500)])
    per_lead = _annotation("2:16000", "MDC", "RR", 900, "ms")
    per_lead.ReferencedWaveformChannels = [1, 2]  # one lead's value, not the global one
    ds.WaveformAnnotationSequence = DicomSequence(
        [
            _annotation("2:16016", "MDC", "Ventricular Heart Rate", 72, "{H.B.}/min"),
            per_lead,
            _annotation("2:15880", "MDC", "QTc global using Bazett formula", 412, "ms"),
            _annotation("2:15892", "MDC", "QTc global using Fredericia formula", 405, "ms"),
            _annotation("2:16160", "MDC", "QT interval global", 0.38, "s"),
            _annotation("8633-0", "LN", "QRS duration", 96, "ms"),
            _annotation("X-1", "99LOCAL", "P-R Interval", 150, "ms"),
            _annotation("2:16132", "MDC", "QRS axis", -30, "deg"),
        ]
    )
    ecg = read_ecg(encoded(ds))
    expected = raw.astype(np.float64) * 0.005 * 1.02 * 1000 + 100.0
    for index, name in enumerate(["I", "II", "V1"]):
        lead = ecg.lead(name)
        assert lead is not None
        np.testing.assert_allclose(lead.samples_uv, expected[:, index], rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        np.stack([ecg.lead(n).samples_uv for n in names], axis=1),  # type: ignore[union-attr]
        ds.waveform_array(0) * 1000.0,  # pydicom's pipeline, in mV
        rtol=1e-12,
    )
    device = ecg.device
    assert (device.heart_rate_bpm, device.rr_ms) == (72.0, pytest.approx(833.3))
    assert (device.qtc_bazett_ms, device.qtc_fridericia_ms, device.qt_ms) == (412, 405, 380)
    assert (device.qrs_ms, device.pr_ms, device.qrs_axis_deg) == (96, 150, -30)


def test_leads_are_named_from_codes_meanings_and_labels() -> None:
    raw = synthetic(500, 6)
    channels = [
        channel("I", source=code("131073", "MDC", "lead one")),  # context-free MDC 2:1
        channel("II", source=code("MDC_ECG_LEAD_II", "MDC", "")),
        channel("III", source=code("5.6.3-9-61", "SCPECG", "Lead III")),
        channel("aVR", source=code("L-99", "99LOCAL", "aVR, augmented voltage, right")),
        channel("V1", label="V1"),
        channel("resp", label="Impedance", units="Ohm"),
    ]
    ecg = read_ecg(encoded(ecg_with([group(channels, raw)], sop_class=GENERAL_ECG)))
    names = [lead.name for lead in ecg.leads]
    assert names == ["I", "II", "III", "aVR", "aVL", "aVF", "V1"]
    assert [lead.derived for lead in ecg.leads] == [False] * 4 + [True, True, False]
    assert any("Impedance" in note and "not shown" in note for note in ecg.notes)


def test_eight_leads_get_the_other_limb_leads_computed() -> None:
    stored = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    raw = synthetic(2500, 8)
    ecg = read_ecg(encoded(ecg_with([group([channel(n) for n in stored], raw)])))
    assert [lead.name for lead in ecg.leads] == list(LEAD_NAMES)
    one, two = raw[:, 0].astype(np.float64), raw[:, 1].astype(np.float64)
    expected = {
        "III": two - one,
        "aVR": -(one + two) / 2,
        "aVL": one - two / 2,
        "aVF": two - one / 2,
    }
    for name, values in expected.items():
        lead = ecg.lead(name)
        assert lead is not None
        assert lead.derived
        np.testing.assert_allclose(lead.samples_uv, values, rtol=0, atol=TOLERANCE_UV)
    assert not any(ecg.lead(n).derived for n in stored)  # type: ignore[union-attr]
    assert any("III, aVR, aVL and aVF are computed from I and II" in n for n in ecg.notes)


def test_only_two_leads_is_a_partial_ecg_that_says_what_is_missing() -> None:
    raw = synthetic(5000, 2)
    ecg = read_ecg(encoded(ecg_with([group([channel("I"), channel("II")], raw)])))
    assert [lead.name for lead in ecg.leads] == ["I", "II", "III", "aVR", "aVL", "aVF"]
    assert "Not in the file: V1, V2, V3, V4, V5 and V6." in ecg.notes
    ambulatory = ecg_with(
        [group([channel("x", label="CM5"), channel("y", label="CC5")], raw, frequency=200)],
        sop_class=AMBULATORY_ECG,
    )
    holter = read_ecg(encoded(ambulatory))
    assert [lead.name for lead in holter.leads] == ["CM5", "CC5"]
    assert holter.duration_s == 25.0
    assert any("No standard 12-lead" in note for note in holter.notes)


def test_sixteen_leads_are_read_standard_ones_first() -> None:
    names = ["V7", "V8", "V9", "V4R", *LEAD_NAMES]
    raw = synthetic(1000, 16)
    ecg = read_ecg(encoded(ecg_with([group([channel(n) for n in names], raw)])))
    assert [lead.name for lead in ecg.leads] == [*LEAD_NAMES, "V7", "V8", "V9", "V4R"]
    np.testing.assert_array_equal(ecg.lead("V8").samples_uv, raw[:, 1])  # type: ignore[union-attr]
    assert set(ecg.standard_leads()) == set(LEAD_NAMES)


def test_groups_recorded_together_are_joined_and_groups_in_sequence_appended() -> None:
    limbs, chest = synthetic(1000, 2, seed=1), synthetic(1000, 6, seed=2)
    together = ecg_with(
        [
            group([channel("I"), channel("II")], limbs, label="LIMB"),
            group([channel(n) for n in ("V1", "V2", "V3", "V4", "V5", "V6")], chest, label="CHEST"),
        ]
    )
    ecg = read_ecg(encoded(together))
    assert [lead.name for lead in ecg.leads] == list(LEAD_NAMES)
    np.testing.assert_array_equal(ecg.lead("V6").samples_uv, chest[:, 5])  # type: ignore[union-attr]
    first, second = synthetic(1000, 2, seed=3), synthetic(1000, 2, seed=4)
    parts = ecg_with(
        [
            group([channel("x", label="CM5"), channel("y", label="CC5")], second, offset_ms=2000),
            group([channel("x", label="CM5"), channel("y", label="CC5")], first, offset_ms=0),
        ],
        sop_class=AMBULATORY_ECG,
    )
    holter = read_ecg(encoded(parts))
    assert holter.duration_s == 4.0
    np.testing.assert_array_equal(holter.leads[0].samples_uv, np.r_[first[:, 0], second[:, 0]])


def test_big_endian_words_are_read_in_their_order() -> None:
    ds = waveform_ecg()
    for item in ds.WaveformSequence:
        item.WaveformData = swapped(item.WaveformData, 2)  # as a big endian writer stores OW
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    out = io.BytesIO()
    dcmwrite(out, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    ecg = read_ecg(out.getvalue())
    np.testing.assert_allclose(
        ecg.leads[0].samples_uv, waveform_ecg().waveform_array(0)[:, 0], rtol=0, atol=0
    )


def _first_group(change: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    return lambda ds: change(ds.WaveformSequence[0])


def _first_channel(change: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    return lambda ds: change(ds.WaveformSequence[0].ChannelDefinitionSequence[0])


def _set(name: str, value: object) -> Callable[[Dataset], None]:
    return lambda item: setattr(item, name, value)


def _delete(name: str) -> Callable[[Dataset], None]:
    return lambda item: delattr(item, name)


def _truncate(item: Dataset) -> None:
    item.WaveformData = item.WaveformData[:-24]


def _both_groups(change: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    def apply(ds: Dataset) -> None:
        for item in ds.WaveformSequence:
            change(item)

    return apply


HOSTILE: dict[str, tuple[Callable[[Dataset], None], str]] = {
    "no waveform sequence": (_delete("WaveformSequence"), "no_waveform"),
    "CT SOP class": (_set("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"), "not_ecg"),
    "no sensitivity": (_first_channel(_delete("ChannelSensitivity")), "missing_sensitivity"),
    "no sensitivity units": (
        _first_channel(_delete("ChannelSensitivityUnitsSequence")),
        "missing_sensitivity",
    ),
    "sensitivity in mmHg": (
        _first_channel(
            _set("ChannelSensitivityUnitsSequence", DicomSequence([code("mm[Hg]", "UCUM", "mmHg")]))
        ),
        "unsupported_units",
    ),
    "sensitivity in megavolts": (
        _first_channel(
            _set("ChannelSensitivityUnitsSequence", DicomSequence([code("MV", "UCUM", "MV")]))
        ),
        "unsupported_units",
    ),
    "zero sensitivity": (_first_channel(_set("ChannelSensitivity", 0)), "invalid_sensitivity"),
    "negative correction": (
        _first_channel(_set("ChannelSensitivityCorrectionFactor", -1)),
        "invalid_sensitivity",
    ),
    "zero sampling frequency": (
        _first_group(_set("SamplingFrequency", 0)),
        "invalid_sampling_frequency",
    ),
    "negative sampling frequency": (
        _first_group(_set("SamplingFrequency", -500)),
        "invalid_sampling_frequency",
    ),
    "absurd sampling frequency": (
        _first_group(_set("SamplingFrequency", 10_000_000)),
        "invalid_sampling_frequency",
    ),
    "no sampling frequency": (
        _first_group(_delete("SamplingFrequency")),
        "invalid_sampling_frequency",
    ),
    "more channels than defined": (
        _first_group(_set("NumberOfWaveformChannels", 13)),
        "inconsistent_channels",
    ),
    "truncated samples": (_first_group(_truncate), "inconsistent_length"),
    "more samples than data": (
        _first_group(_set("NumberOfWaveformSamples", 20000)),
        "inconsistent_length",
    ),
    "more than 24 hours": (
        _first_group(_set("NumberOfWaveformSamples", 100_000_000)),
        "too_large",
    ),
    "mu-law samples": (
        _first_group(_set("WaveformSampleInterpretation", "MB")),
        "unsupported_samples",
    ),
    "12 bit samples": (_first_group(_set("WaveformBitsAllocated", 12)), "unsupported_samples"),
    "no channels": (_first_group(_set("NumberOfWaveformChannels", 0)), "malformed"),
    "every group broken": (
        _both_groups(_set("SamplingFrequency", 0)),
        "invalid_sampling_frequency",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_variants_are_refused_with_their_reason(case: str) -> None:
    change, reason = HOSTILE[case]
    ds = waveform_ecg()
    change(ds)
    with pytest.raises(EcgError) as refused:
        read_ecg(encoded(ds))
    assert refused.value.reason == reason, refused.value.message
    assert refused.value.message


def test_a_broken_rhythm_group_is_not_replaced_by_the_median_beat() -> None:
    ds = waveform_ecg()
    del ds.WaveformSequence[0].ChannelDefinitionSequence[3].ChannelSensitivity
    with pytest.raises(EcgError) as refused:
        read_ecg(encoded(ds))
    assert refused.value.reason == "missing_sensitivity"
    assert "aVR" in refused.value.message


def test_not_dicom_and_too_many_samples() -> None:
    with pytest.raises(EcgError) as refused:
        read_ecg(b"\x00" * 300)
    assert refused.value.reason == "not_dicom"
    with pytest.raises(EcgError) as refused:
        read_ecg(bundled("waveform_ecg.dcm").read_bytes(), max_values=119_999)
    assert refused.value.reason == "too_large"


def test_a_broken_median_group_is_only_a_note() -> None:
    ds = waveform_ecg()
    ds.WaveformSequence[1].SamplingFrequency = 0
    ecg = read_ecg(encoded(ds))
    assert ecg.duration_s == 10.0
    assert any(note.startswith("Waveform group 2 was not read") for note in ecg.notes)


def test_whole_microvolts_and_the_measurement_keys_of_a_flat_line() -> None:
    np.testing.assert_array_equal(
        whole_microvolts(np.array([0.4, 0.5, 1.5, -2.5, -2.6])), [0, 0, 2, -2, -3]
    )
    flat = np.zeros((5000, 12), dtype=np.int16)
    ecg = read_ecg(encoded(ecg_with([group([channel(n) for n in LEAD_NAMES], flat)])))
    found = measure(ecg.standard_leads(), ecg.sampling_frequency).as_dict()
    assert found == dict.fromkeys(MEASUREMENT_KEYS)


def test_a_device_value_in_unknown_units_is_a_note_not_a_wrong_value() -> None:
    ds = ecg_with([group([channel(n) for n in LEAD_NAMES], synthetic(1000, 12))])
    ds.WaveformAnnotationSequence = DicomSequence(
        [
            _annotation("5.13.5-11", "SCPECG", "QT Interval", 38, "cs"),
            _annotation("5.13.5-7", "SCPECG", "PR Interval", 0, "ms"),  # "not measured"
        ]
    )
    ecg = read_ecg(encoded(ds))
    assert (ecg.device.qt_ms, ecg.device.pr_ms) == (None, None)
    assert "A device measurement was not read: QT Interval is given in 'cs'." in ecg.notes


@functools.cache
def _seed() -> bytes:
    return bundled("waveform_ecg.dcm").read_bytes()


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns of the values it mends
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(132, 139_000), st.binary(min_size=1, max_size=4)), max_size=6)
)
def test_mutated_files_are_read_or_refused_with_a_reason(
    edits: list[tuple[int, bytes]],
) -> None:
    data = bytearray(_seed())
    for offset, value in edits:
        at = offset % (len(data) - 4)
        data[at : at + len(value)] = value
    try:
        ecg = read_ecg(bytes(data))
    except EcgError as error:
        reason: str = error.reason
    else:
        reason = "read"
        assert ecg.leads
        assert all(np.isfinite(lead.samples_uv).all() for lead in ecg.leads)
    assert reason in {"read", *get_args(EcgReason)}


def test_a_file_with_only_a_median_beat_says_so() -> None:
    ds = waveform_ecg()
    del ds.WaveformSequence[0]
    ecg = read_ecg(encoded(ds))
    assert ecg.duration_s == pytest.approx(1.2)
    assert any("median or average beat" in note for note in ecg.notes)
