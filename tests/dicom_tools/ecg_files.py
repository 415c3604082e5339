"""ECG files for tests: pydicom's waveform_ecg.dcm, mutated copies of it, and files built here."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from tests.dicom_tools.part10 import bundled

TWELVE_LEAD = "1.2.840.10008.5.1.4.1.1.9.1.1"
GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2"
AMBULATORY_ECG = "1.2.840.10008.5.1.4.1.1.9.1.3"
MEASUREMENT_KEYS = (
    "heart_rate_bpm",
    "rr_ms",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "qrs_axis_deg",
    "rhythm",
)
"""The keys of the automatic measurements (issue 9's contract)."""
# SCP-ECG lead codes (5.6.3-9-n) of the twelve standard leads, as waveform_ecg.dcm has them
SCP_CODES = {
    "I": 1,
    "II": 2,
    "III": 61,
    "aVR": 62,
    "aVL": 63,
    "aVF": 64,
    "V1": 3,
    "V2": 4,
    "V3": 5,
    "V4": 6,
    "V5": 7,
    "V6": 8,
    "V7": 9,
    "V8": 66,
    "V9": 67,
    "V4R": 12,
}


def waveform_ecg() -> Dataset:
    """A fresh copy of pydicom's 12-lead ECG (Mortara; a rhythm and a median beat group)."""
    return pydicom.dcmread(bundled("waveform_ecg.dcm"))


def encoded(ds: Dataset, *, new_uid: bool = True) -> bytes:
    """The dataset as a Part 10 file, with a new SOP Instance UID unless told otherwise."""
    if new_uid:
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def channel(
    name: str,
    *,
    scheme: str = "SCPECG",
    sensitivity: float | None = 1.0,
    units: str | None = "uV",
    correction: float | None = 1.0,
    baseline: float | None = 0.0,
    label: str | None = None,
    source: Dataset | None = None,
) -> Dataset:
    """A Channel Definition Sequence item for a lead (SCP-ECG or MDC coded by default)."""
    item = Dataset()
    if source is not None:
        item.ChannelSourceSequence = DicomSequence([source])
    elif name in SCP_CODES:
        number = SCP_CODES[name]
        value = f"5.6.3-9-{number}" if scheme == "SCPECG" else f"2:{number}"
        item.ChannelSourceSequence = DicomSequence([code(value, scheme, f"Lead {name}")])
    if label is not None:
        item.ChannelLabel = label
    if sensitivity is not None:
        item.ChannelSensitivity = sensitivity
    if units is not None:
        item.ChannelSensitivityUnitsSequence = DicomSequence([code(units, "UCUM", units)])
    if correction is not None:
        item.ChannelSensitivityCorrectionFactor = correction
    if baseline is not None:
        item.ChannelBaseline = baseline
    item.WaveformBitsStored = 16
    return item


def group(
    channels: Sequence[Dataset],
    raw: npt.NDArray[np.int16],
    *,
    frequency: float = 500.0,
    label: str = "RHYTHM",
    originality: str = "ORIGINAL",
    offset_ms: float = 0.0,
) -> Dataset:
    """A multiplex group of 16 bit SS samples, raw shaped (samples, channels)."""
    item = Dataset()
    item.MultiplexGroupTimeOffset = offset_ms
    item.WaveformOriginality = originality
    item.NumberOfWaveformChannels = len(channels)
    item.NumberOfWaveformSamples = raw.shape[0]
    item.SamplingFrequency = frequency
    item.MultiplexGroupLabel = label
    item.ChannelDefinitionSequence = DicomSequence(list(channels))
    item.WaveformBitsAllocated = 16
    item.WaveformSampleInterpretation = "SS"
    item.WaveformData = raw.astype("<i2").tobytes()
    return item


def ecg_with(
    groups: Sequence[Dataset], *, sop_class: str = TWELVE_LEAD, annotations: bool = False
) -> Dataset:
    """waveform_ecg.dcm's patient and study with these groups instead of its own."""
    ds = waveform_ecg()
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.WaveformSequence = DicomSequence(list(groups))
    if not annotations:
        del ds.WaveformAnnotationSequence
    return ds


def synthetic(samples: int, channels: int, seed: int = 9) -> npt.NDArray[np.int16]:
    """Reproducible stored values, (samples, channels), within +-2000."""
    return np.random.default_rng(seed).integers(-2000, 2000, (samples, channels)).astype(np.int16)
