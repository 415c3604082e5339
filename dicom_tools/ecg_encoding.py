"""Calibrated leads encoded as a DICOM 12-Lead ECG Waveform instance (PS3.3 A.34.3).

The instance has the IOD's modules: Patient, General Study, General Series, General
Equipment, Waveform Identification, Waveform (C.10.9: one multiplex group of signed 16-bit
samples, SS, one channel per lead with its SCPECG source code and its sensitivity in uV),
Acquisition Context, Waveform Annotation (when there are statements or measurements) and
SOP Common; the file is Part 10, Explicit VR Little Endian, with new UIDs. The IOD's limits
are kept: 1 to 12 leads, sampling frequency 200 to 1000 Hz, at most 16384 samples. Leads a
recording lacks (III, aVR, aVL, aVF are often derived) are not invented. Every function
blocks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicom_tools.errors import ReasonedError
from dicom_tools.secondary_capture import new_uid

TWELVE_LEAD_ECG = UID("1.2.840.10008.5.1.4.1.1.9.1.1")
MIN_SAMPLING_FREQUENCY = 200.0
MAX_SAMPLING_FREQUENCY = 1000.0
MAX_SAMPLES = 16384
MAX_LEADS = 12
_INT16 = 32767
_SENSITIVITIES = (1.0, 1.25, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0)
"""Microvolts per stored unit tried in turn when the caller gives none (or one too fine)."""

EncodingReason = Literal[
    "no_leads",
    "too_many_leads",
    "unknown_lead",
    "inconsistent_leads",
    "unsupported_sampling_frequency",
    "too_many_samples",
    "out_of_range",
    "invalid_value",
]
"""Stable codes of :class:`EcgEncodingError`.

- ``no_leads``: no lead, or leads without samples.
- ``too_many_leads``: more than the IOD's 12 (a 15- or 16-lead ECG needs another IOD).
- ``unknown_lead``: a name other than the 12 standard leads.
- ``inconsistent_leads``: leads of different lengths.
- ``unsupported_sampling_frequency``: outside the IOD's 200 to 1000 Hz.
- ``too_many_samples``: more than the IOD's 16384 samples per lead.
- ``out_of_range``: a voltage that 16-bit samples cannot hold at any offered sensitivity.
- ``invalid_value``: a sample that is not a finite number, or an unknown measurement.
"""


class EcgEncodingError(ReasonedError[EncodingReason]):
    """The leads cannot be encoded as a 12-Lead ECG instance: a reason and a message."""


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept: value, scheme and meaning (one item of a code sequence)."""

    value: str
    scheme: str
    meaning: str
    version: str | None = None

    def item(self) -> Dataset:
        """The code as a sequence item."""
        ds = Dataset()
        ds.CodeValue = self.value
        ds.CodingSchemeDesignator = self.scheme
        if self.version:
            ds.CodingSchemeVersion = self.version
        ds.CodeMeaning = self.meaning
        return ds


def _scpecg(value: str, meaning: str) -> Code:
    return Code(value, "SCPECG", meaning, "1.3")


LEAD_SOURCES: Mapping[str, Code] = {
    "I": _scpecg("5.6.3-9-1", "Lead I"),
    "II": _scpecg("5.6.3-9-2", "Lead II"),
    "III": _scpecg("5.6.3-9-61", "Lead III"),
    "aVR": _scpecg("5.6.3-9-62", "Lead aVR"),
    "aVL": _scpecg("5.6.3-9-63", "Lead aVL"),
    "aVF": _scpecg("5.6.3-9-64", "Lead aVF"),
    **{f"V{n}": _scpecg(f"5.6.3-9-{n + 2}", f"Lead V{n}") for n in range(1, 7)},
}
"""Channel sources of the standard leads (CID 3001, SCP-ECG lead codes), in channel order."""
MICROVOLT = Code("uV", "UCUM", "microvolt", "1.4")
_MS = Code("ms", "UCUM", "milliseconds", "1.4")
_DEGREES = Code("deg", "UCUM", "degrees", "1.4")
MEASUREMENT_CODES: Mapping[str, tuple[Code, Code]] = {
    "heart_rate_bpm": (Code("8867-4", "LN", "Heart rate"), Code("/min", "UCUM", "per minute")),
    "rr_ms": (_scpecg("5.10.2.1-3", "RR Interval"), _MS),
    "pr_ms": (_scpecg("5.13.5-7", "PR Interval"), _MS),
    "qrs_ms": (_scpecg("5.13.5-9", "QRS Duration"), _MS),
    "qt_ms": (_scpecg("5.13.5-11", "QT Interval"), _MS),
    "qtc_ms": (_scpecg("5.10.2.5-5", "QTc Interval"), _MS),  # the formula is not stated
    "p_axis_deg": (_scpecg("5.10.3-11", "P Axis"), _DEGREES),
    "qrs_axis_deg": (_scpecg("5.10.3-13", "QRS Axis"), _DEGREES),
    "t_axis_deg": (_scpecg("5.10.3-15", "T Axis"), _DEGREES),
}
"""Waveform annotation concepts and units of device measurements, by the names the ECG
reader reports (``Measurements`` field names, plus ``qtc_ms`` and the P and T axes)."""


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """The patient attributes of the instance, in DICOM form; empty strings when unknown."""

    name: str = ""  # PN, Family^Given
    patient_id: str = ""
    birth_date: str = ""  # DA, YYYYMMDD
    sex: str = ""  # M, F, O or empty


def _checked_leads(
    leads: Mapping[str, npt.NDArray[np.float64]], sampling_frequency: float
) -> list[tuple[str, npt.NDArray[np.float64]]]:
    """The leads in channel order, after the IOD's limits are checked."""
    if not leads:
        raise EcgEncodingError("no_leads", "There is no lead to encode.")
    if len(leads) > MAX_LEADS:
        raise EcgEncodingError(
            "too_many_leads",
            f"{len(leads)} leads were given; the 12-Lead ECG IOD holds at most {MAX_LEADS}.",
        )
    unknown = sorted(set(leads) - set(LEAD_SOURCES))
    if unknown:
        raise EcgEncodingError(
            "unknown_lead", f"Not standard 12-lead names: {', '.join(unknown)[:200]}."
        )
    if not (
        math.isfinite(sampling_frequency)
        and MIN_SAMPLING_FREQUENCY <= sampling_frequency <= MAX_SAMPLING_FREQUENCY
    ):
        raise EcgEncodingError(
            "unsupported_sampling_frequency",
            f"The sampling frequency is {sampling_frequency:g} Hz; the 12-Lead ECG IOD "
            f"takes {MIN_SAMPLING_FREQUENCY:g} to {MAX_SAMPLING_FREQUENCY:g} Hz.",
        )
    present = [
        (name, np.asarray(leads[name], dtype=np.float64)) for name in LEAD_SOURCES if name in leads
    ]
    lengths = {values.shape for _, values in present}
    if len(lengths) > 1 or any(len(shape) != 1 for shape in lengths):
        raise EcgEncodingError("inconsistent_leads", "The leads differ in their number of samples.")
    samples = present[0][1].size
    if samples == 0:
        raise EcgEncodingError("no_leads", "The leads hold no samples.")
    if samples > MAX_SAMPLES:
        raise EcgEncodingError(
            "too_many_samples",
            f"{samples} samples per lead; the 12-Lead ECG IOD holds at most {MAX_SAMPLES}.",
        )
    if not all(np.isfinite(values).all() for _, values in present):
        raise EcgEncodingError("invalid_value", "A lead holds a sample that is not a number.")
    return present


def sensitivity_for(peak_uv: float, preferred_uv: float | None = None) -> float:
    """Microvolts per stored unit: the preferred one when 16 bits hold the peak at it.

    Otherwise the finest of 1, 1.25, 2, 2.5, 5, ... 100 uV that holds it.
    """
    if preferred_uv is not None and preferred_uv > 0 and peak_uv / preferred_uv <= _INT16:
        return preferred_uv
    for candidate in _SENSITIVITIES:
        if peak_uv / candidate <= _INT16:
            return candidate
    raise EcgEncodingError(
        "out_of_range",
        f"A sample of {peak_uv / 1000:.0f} mV is beyond any ECG; it cannot be encoded.",
    )


def _ds(value: float) -> str:
    """A DS value (at most 16 characters) for a sensitivity or measurement."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def _channel(name: str, sensitivity: float) -> Dataset:
    channel = Dataset()
    channel.ChannelSourceSequence = DicomSequence([LEAD_SOURCES[name].item()])
    channel.ChannelSensitivity = _ds(sensitivity)
    channel.ChannelSensitivityUnitsSequence = DicomSequence([MICROVOLT.item()])
    channel.ChannelSensitivityCorrectionFactor = "1"
    channel.ChannelBaseline = "0"
    channel.ChannelSampleSkew = "0"
    channel.WaveformBitsStored = 16
    return channel


def _multiplex_group(
    present: list[tuple[str, npt.NDArray[np.float64]]],
    sampling_frequency: float,
    sensitivity: float,
) -> Dataset:
    stored = np.stack([np.rint(values / sensitivity) for _, values in present], axis=1)
    group = Dataset()
    group.MultiplexGroupTimeOffset = "0"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(present)
    group.NumberOfWaveformSamples = stored.shape[0]
    group.SamplingFrequency = _ds(sampling_frequency)
    group.MultiplexGroupLabel = "RHYTHM"
    group.ChannelDefinitionSequence = DicomSequence(
        [_channel(name, sensitivity) for name, _ in present]
    )
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = stored.astype("<i2").tobytes()
    group["WaveformData"].VR = "OW"
    return group


def _annotations(statements: Sequence[str], measurements: Mapping[str, float]) -> list[Dataset]:
    items = []
    for text in statements:
        item = Dataset()
        item.UnformattedTextValue = text[:1024]
        item.ReferencedWaveformChannels = [1, 0]  # multiplex group 1, all channels
        item.AnnotationGroupNumber = 0
        items.append(item)
    for key, value in measurements.items():
        if key not in MEASUREMENT_CODES or not math.isfinite(value):
            raise EcgEncodingError("invalid_value", f"Cannot encode the measurement {key!r:.40}.")
        concept, unit = MEASUREMENT_CODES[key]
        item = Dataset()
        item.MeasurementUnitsCodeSequence = DicomSequence([unit.item()])
        item.ConceptNameCodeSequence = DicomSequence([concept.item()])
        item.ReferencedWaveformChannels = [1, 0]
        item.AnnotationGroupNumber = 1
        item.NumericValue = _ds(value)
        items.append(item)
    return items


def twelve_lead_ecg(
    leads: Mapping[str, npt.NDArray[np.float64]],
    sampling_frequency: float,
    *,
    patient: PatientIdentity | None = None,
    study_uid: str | None = None,
    acquired: datetime | None = None,
    manufacturer: str | None = None,
    model: str | None = None,
    device_measurements: Mapping[str, float] | None = None,
    statements: Sequence[str] = (),
    sensitivity_uv: float | None = None,
    series_description: str = "12-lead ECG",
    now: datetime | None = None,
) -> Dataset:
    """A 12-Lead ECG Waveform instance of these leads (microvolts by standard lead name).

    Each sample is stored as round(value / sensitivity): the calibrated values read back
    within half a stored unit (0.5 LSB). The sensitivity is ``sensitivity_uv`` when 16 bits
    hold the largest sample at it (give the source's own quantum to keep it lossless), else
    the finest of 1, 1.25, 2, 2.5, 5 ... uV that does. The dataset carries its file meta.
    """
    present = _checked_leads(leads, sampling_frequency)
    peak = max(float(np.max(np.abs(values))) for _, values in present)
    sensitivity = sensitivity_for(peak, sensitivity_uv)
    created = now or datetime.now()
    when = acquired or created
    who = patient or PatientIdentity()

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate, ds.InstanceCreationTime = created.strftime("%Y%m%d %H%M%S").split()
    ds.SOPClassUID = TWELVE_LEAD_ECG
    ds.SOPInstanceUID = new_uid()
    ds.StudyDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = "ECG"
    ds.Manufacturer = (manufacturer or "")[:64]
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "ECG"
    ds.SeriesDescription = series_description[:64]
    if model:
        ds.ManufacturerModelName = model[:64]
    ds.PatientName = who.name[:64]
    ds.PatientID = who.patient_id[:64]
    ds.PatientBirthDate = who.birth_date
    ds.PatientSex = who.sex
    ds.StudyInstanceUID = study_uid or new_uid()
    ds.SeriesInstanceUID = new_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.AcquisitionContextSequence = DicomSequence([])
    ds.WaveformSequence = DicomSequence(
        [_multiplex_group(present, sampling_frequency, sensitivity)]
    )
    annotations = _annotations(statements, device_measurements or {})
    if annotations:
        ds.WaveformAnnotationSequence = DicomSequence(annotations)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = TWELVE_LEAD_ECG
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def part10(ds: Dataset) -> bytes:
    """The dataset written as a Part 10 file (preamble, DICM, file meta, Explicit VR LE)."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
