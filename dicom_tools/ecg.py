"""ECG waveforms of DICOM instances, calibrated to microvolts (PS3.3 C.10.9, A.34).

Reads the 12-Lead, General and Ambulatory ECG Waveform IODs. Of the multiplex
groups of the Waveform Sequence, the one presented is the diagnostic recording:
not a median or average beat (pydicom's ``waveform_ecg.dcm`` has a 10 s
"RHYTHM" group and a 1.2 s "MEDIAN BEAT" group, DERIVED from it: the rhythm
group is shown, since a reader measures and reads the recorded beats), an
ORIGINAL group before a DERIVED one, then the one with the most standard leads,
then the longest. Other groups recorded at the same time with other leads are
joined to it, and groups continuing it in time (an ambulatory recording in
parts) are appended.

Every sample is calibrated as PS3.3 C.10.9.1.4 defines it: the stored value
times Channel Sensitivity times Channel Sensitivity Correction Factor, plus
Channel Baseline ("offset of encoded sample value 0 from actual 0", in the
Channel Sensitivity Units), converted from those units (UCUM uV, mV, V, nV) to
microvolts. This is pydicom's ``waveform_array`` pipeline. A channel without a
sensitivity, or in units that are not a voltage, is never given a scale: a
lead in that state refuses the whole ECG.

Leads are named from the Channel Source Sequence (SCP-ECG ``5.6.3-9-n`` and
ISO/IEEE 11073 MDC ``2:n`` codes, which share their numbering), else from the
code meaning or the channel label. When the limb leads are incomplete, the
missing ones are computed from the others (Einthoven and Goldberger):
III = II - I, aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2.

The device's own measurements (Waveform Annotation Sequence, C.10.10) are read
from coded numeric annotations (SCPECG, MDC, LOINC and DCM codes, else their
code meaning) and its statements from the Unformatted Text Values. Every
function blocks.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from dicom_tools.byte_order import swapped
from dicom_tools.elements import walk_file_meta
from dicom_tools.errors import IngestError, ReasonedError

LEAD_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
ECG_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-Lead ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG",
}
MIN_SAMPLING_FREQUENCY = 50.0
MAX_SAMPLING_FREQUENCY = 20_000.0
MAX_DURATION_S = 24 * 3600.0
MAX_VALUES = 4_000_000
"""Samples (over all channels) decoded at most: 12 leads for 5.5 minutes at 1000 Hz, 32 MB."""
MAX_STATEMENTS = 100
MAX_STATEMENT_LENGTH = 1000

EcgReason = Literal[
    "not_dicom",
    "not_ecg",
    "no_waveform",
    "unsupported_samples",
    "inconsistent_channels",
    "inconsistent_length",
    "invalid_sampling_frequency",
    "missing_sensitivity",
    "invalid_sensitivity",
    "unsupported_units",
    "too_large",
    "malformed",
]
"""Stable codes of :class:`EcgError`.

- ``not_dicom``: the bytes are not a readable DICOM file.
- ``not_ecg``: the SOP class is not one of the ECG waveform classes.
- ``no_waveform``: no Waveform Sequence, or no group with an ECG lead in it.
- ``unsupported_samples``: bits and sample interpretation that are not integer ECG samples
  (mu-law/A-law audio, mismatched bits, big endian beyond 16 bits).
- ``inconsistent_channels``: Number of Waveform Channels disagrees with the channel definitions.
- ``inconsistent_length``: the Waveform Data is not channels x samples x bytes long.
- ``invalid_sampling_frequency``: absent, not a number, or outside 50 Hz .. 20 kHz.
- ``missing_sensitivity``: a lead has no Channel Sensitivity or no units for it.
- ``invalid_sensitivity``: zero, negative, infinite or absurd sensitivity, correction or baseline.
- ``unsupported_units``: a lead's sensitivity units are not a voltage.
- ``too_large``: more than 24 h of samples, or more samples than the reader decodes.
- ``malformed``: a required attribute is absent or its value cannot be read.
"""

Samples = npt.NDArray[np.float64]


class EcgError(ReasonedError[EcgReason]):
    """An ECG cannot be read, with the reason; never a partial result on a wrong scale."""


@dataclass(frozen=True, slots=True)
class Lead:
    """One lead: its name and its samples in calibrated microvolts."""

    name: str
    """The standard name when known ("II"), else the channel's label."""
    samples_uv: Samples
    """Calibrated microvolts: stored x sensitivity x correction + baseline, in uV."""
    derived: bool
    """Computed here (III, aVR, aVL, aVF from I and II), not stored in the file."""


@dataclass(frozen=True, slots=True)
class DeviceMeasurements:
    """What the acquiring device stated in the file; None for what it does not state.

    The first nine keys are those of the automatic measurements. A QTc whose
    formula the file does not name is ``qtc_ms``; the P and T axes are
    ``p_axis_deg`` and ``t_axis_deg``. A heart rate the file gives only as an RR
    interval (or the reverse) is converted: 60000 / value, to 0.1. The device's
    rhythm is in its statements, so ``rhythm`` stays None.
    """

    heart_rate_bpm: float | None = None
    rr_ms: float | None = None
    pr_ms: float | None = None
    qrs_ms: float | None = None
    qt_ms: float | None = None
    qtc_bazett_ms: float | None = None
    qtc_fridericia_ms: float | None = None
    qrs_axis_deg: float | None = None
    rhythm: str | None = None
    qtc_ms: float | None = None
    p_axis_deg: float | None = None
    t_axis_deg: float | None = None
    statements: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The measurements by key, with the statements as a list."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        values["statements"] = list(self.statements)
        return values


@dataclass(frozen=True, slots=True)
class Ecg:
    """A calibrated ECG: its leads at one sampling frequency, and what the file said of it."""

    sop_class_uid: str
    sampling_frequency: float
    """Hz."""
    leads: tuple[Lead, ...]
    """In LEAD_NAMES order first, then any others in channel order."""
    device: DeviceMeasurements
    notes: tuple[str, ...]
    """Plain-language notes on what is missing, partial or computed."""

    @property
    def duration_s(self) -> float:
        """Seconds of recording."""
        return len(self.leads[0].samples_uv) / self.sampling_frequency if self.leads else 0.0

    def lead(self, name: str) -> Lead | None:
        """The lead of that name, if the ECG has it."""
        return next((lead for lead in self.leads if lead.name == name), None)

    def standard_leads(self) -> dict[str, Samples]:
        """The samples of the standard leads it has (the input of ``ecg_measurements.measure``)."""
        return {lead.name: lead.samples_uv for lead in self.leads if lead.name in LEAD_NAMES}


# Reading ---------------------------------------------------------------------------------


def read_ecg(source: bytes | BinaryIO | Dataset, *, max_values: int = MAX_VALUES) -> Ecg:
    """The calibrated ECG of a DICOM ECG waveform instance; raises EcgError."""
    dataset = open_dataset(source)
    sop_class = _text(dataset, "SOPClassUID")
    if sop_class not in ECG_SOP_CLASSES:
        name = UID(sop_class).name if sop_class else "no SOP Class UID"
        raise EcgError("not_ecg", f"This instance is not an ECG waveform ({name}).")
    items = _element(dataset, "WaveformSequence")
    if not items:
        raise EcgError("no_waveform", "The ECG instance has no Waveform Sequence.")
    big_endian = dataset.original_encoding[1] is False
    notes: list[str] = []
    parsed: list[_Group] = []
    refusals: list[tuple[int, EcgError]] = []
    for number, item in enumerate(items, start=1):
        try:
            parsed.append(_parse_group(number, item))
        except EcgError as error:
            refusals.append((number, error))
    chosen = _choose(parsed, refusals, notes)
    total = sum(group.channels * group.samples for group in chosen)
    if total > max_values:
        raise EcgError(
            "too_large",
            f"The ECG holds {total} samples; at most {max_values} are read "
            f"({len(chosen[0].leads)} channels, {chosen[0].duration_s:.0f} s).",
        )
    leads = _calibrated_leads(chosen, big_endian, notes)
    leads = _with_derived_leads(leads, notes)
    _note_missing(leads, notes)
    return Ecg(
        sop_class_uid=sop_class,
        sampling_frequency=chosen[0].frequency,
        leads=tuple(_ordered(leads)),
        device=_device_measurements(dataset, notes),
        notes=tuple(notes),
    )


def open_dataset(source: bytes | BinaryIO | Dataset) -> Dataset:
    """The dataset of a Part 10 file as this reader reads it; EcgError ``not_dicom``.

    Its Waveform Sequence is parsed here. Of its Waveform Annotation Sequence only the
    items with a Numeric Value or an Unformatted Text Value are kept: the others (a
    device's fiducial points, often most of them) are never read by this module, and
    parsing them was most of the time spent reading a file (see :func:`_without_unread`).
    """
    if isinstance(source, Dataset):
        return source
    data = source if isinstance(source, bytes | bytearray) else source.read()
    try:
        dataset = dcmread(io.BytesIO(_without_unread(bytes(data))))
        dataset.get("WaveformSequence")  # parse the sequence here, where its errors are caught
    except Exception as error:
        raise EcgError("not_dicom", f"The file cannot be read as DICOM: {error}") from None
    return dataset


# Annotations that are not read ----------------------------------------------------------------

_LITTLE_ENDIAN_SYNTAXES = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}
"""Transfer syntaxes whose annotations are filtered: UID -> implicit VR."""
_ANNOTATIONS = 0x0040B020
_KEPT_IN_ANNOTATION = frozenset({0x0040A30A, 0x00700006})  # Numeric Value, Unformatted Text
_TRANSFER_SYNTAX = 0x00020010
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_HEADER = struct.Struct("<HHL")
_SHORT_HEADER = struct.Struct("<HH2sH")
_LENGTH = struct.Struct("<L")
_MAX_DEPTH = 32


class _Unusual(Exception):
    """An encoding the filter does not handle: pydicom reads the file as it is."""


def _without_unread(data: bytes) -> bytes:
    """The file with only the annotations that are read (Little Endian files; else as it is).

    A structural walk of tags and lengths, reading no values: the top-level elements up
    to the Waveform Annotation Sequence are skipped, its items are split, and those with
    neither a Numeric Value nor an Unformatted Text Value at their top level are left
    out (the sequence is written back with an undefined length, each kept item as its
    own bytes). Anything unexpected leaves the file as it is, for pydicom to read or refuse.
    """
    if data[128:132] != b"DICM":
        return data
    try:
        layout = walk_file_meta(data, 132, max_element_length=len(data))
        syntax = next(
            data[e.value_offset : e.value_offset + e.length]
            for e in layout.elements
            if e.tag == _TRANSFER_SYNTAX
        )
        implicit = _LITTLE_ENDIAN_SYNTAXES[syntax.rstrip(b"\0 ").decode("ascii")]
        found = _annotation_element(data, layout.end, implicit)
        if found is None:
            return data
        start, value, end = found
        items = _items(data, value, end, implicit)
    except (IngestError, StopIteration, KeyError, UnicodeDecodeError, struct.error, _Unusual):
        return data
    kept = [data[a:b] for a, b, tags in items if tags & _KEPT_IN_ANNOTATION]
    if len(kept) == len(items):
        return data
    header = _HEADER.pack(_ANNOTATIONS >> 16, _ANNOTATIONS & 0xFFFF, _UNDEFINED)
    if not implicit:
        header = _SHORT_HEADER.pack(_ANNOTATIONS >> 16, _ANNOTATIONS & 0xFFFF, b"SQ", 0)
        header += _LENGTH.pack(_UNDEFINED)
    closing = _HEADER.pack(_SEQUENCE_END >> 16, _SEQUENCE_END & 0xFFFF, 0)
    return b"".join([data[:start], header, *kept, closing, data[end:]])


def _annotation_element(data: bytes, pos: int, implicit: bool) -> tuple[int, int, int] | None:
    """(start, value start, end) of the top-level Waveform Annotation Sequence, if any."""
    while pos < len(data):
        tag, value, length, vr = _element_header(data, pos, implicit)
        if tag > _ANNOTATIONS:
            return None
        end = _element_end(data, value, length, implicit or vr == b"UN", 0)
        if tag == _ANNOTATIONS:
            if vr not in (None, b"SQ"):
                raise _Unusual("the annotations are not encoded as a sequence")
            return pos, value, end
        pos = end
    return None


def _element_header(data: bytes, pos: int, implicit: bool) -> tuple[int, int, int, bytes | None]:
    """(tag, value offset, declared length, explicit VR) of the element at pos."""
    group, element, length = _HEADER.unpack_from(data, pos)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:
        return tag, pos + 8, length, None
    _, _, vr, length = _SHORT_HEADER.unpack_from(data, pos)
    if vr in _LONG_VRS:
        return tag, pos + 12, _LENGTH.unpack_from(data, pos + 8)[0], vr
    return tag, pos + 8, length, vr


def _element_end(data: bytes, value: int, length: int, implicit: bool, depth: int) -> int:
    """Just past an element's value; an undefined length is a sequence walked to its end."""
    if length != _UNDEFINED:
        if value + length > len(data):
            raise _Unusual("a value runs past the end")
        return value + length
    if depth >= _MAX_DEPTH:
        raise _Unusual("sequences nest too deep")
    pos = value
    while True:
        tag, start, item_length, _ = _element_header(data, pos, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise _Unusual("not an item")
        pos = _item(data, start, item_length, implicit, depth + 1)[0]


def _item(data: bytes, pos: int, length: int, implicit: bool, depth: int) -> tuple[int, set[int]]:
    """Just past an item whose contents start at pos, and its top-level tags."""
    end = None if length == _UNDEFINED else pos + length
    tags: set[int] = set()
    while pos != end:
        if end is not None and pos > end:
            raise _Unusual("an element runs past its item")
        tag, value, value_length, vr = _element_header(data, pos, implicit)
        if tag == _ITEM_END and end is None:
            return value, tags
        tags.add(tag)
        pos = _element_end(data, value, value_length, implicit or vr == b"UN", depth)
    return pos, tags


def _items(data: bytes, value: int, end: int, implicit: bool) -> list[tuple[int, int, set[int]]]:
    """The items of a sequence value: (start, end, top-level tags)."""
    items = []
    pos = value
    while pos < end:
        tag, start, length, _ = _element_header(data, pos, True)
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM:
            raise _Unusual("not an item")
        item_end, tags = _item(data, start, length, implicit, 1)
        if item_end > end:
            raise _Unusual("an item runs past its sequence")
        items.append((pos, item_end, tags))
        pos = item_end
    return items


def _element(dataset: Dataset, keyword: str) -> Any:
    """A value, or None when absent; an unreadable value is ``malformed``."""
    try:
        return dataset.get(keyword)
    except Exception as error:
        raise EcgError("malformed", f"{keyword} cannot be read: {error}") from None


def _text(dataset: Dataset, keyword: str) -> str:
    value = _element(dataset, keyword)
    return "" if value is None else str(value).strip()


def _number(dataset: Dataset, keyword: str, *, where: str) -> float | None:
    """A numeric value (DS, IS, US...), None when absent or empty."""
    value = _element(dataset, keyword)
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple | MultiValue):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EcgError("malformed", f"{keyword} of {where} is not a number: {value!r}.") from None


def _count(dataset: Dataset, keyword: str, *, where: str) -> int | None:
    """A whole number (US, UL, IS...), None when absent."""
    value = _number(dataset, keyword, where=where)
    if value is None:
        return None
    if not (math.isfinite(value) and value.is_integer()):
        raise EcgError("malformed", f"{keyword} of {where} is not a whole number: {value}.")
    return int(value)


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else 0.0


# Multiplex groups --------------------------------------------------------------------------

_DTYPES: dict[tuple[int, str], str] = {
    (8, "SB"): "i1",
    (8, "UB"): "u1",
    (16, "SS"): "i2",
    (16, "US"): "u2",
    (32, "SL"): "i4",
    (32, "UL"): "u4",
}
_COMPANDED = {"MB": "mu-law", "AB": "A-law"}
_MEDIAN_LABELS = ("MEDIAN", "AVERAG", "REPRESENTATIVE", "TEMPLATE")


@dataclass(frozen=True, slots=True)
class _Channel:
    name: str
    standard: bool
    scale: float  # uV per stored unit (sensitivity x correction x unit)
    offset: float  # uV (baseline x unit)
    usable: bool  # a lead with a known scale (else skipped with a note)


@dataclass(frozen=True, slots=True)
class _Group:
    number: int
    label: str
    original: bool
    channels: int
    samples: int
    frequency: float
    offset_ms: float
    dtype: str
    data: bytes
    data_vr: str
    leads: tuple[_Channel, ...]

    @property
    def duration_s(self) -> float:
        return self.samples / self.frequency

    @property
    def is_median(self) -> bool:
        label = self.label.upper()
        return any(word in label for word in _MEDIAN_LABELS)

    @property
    def standard_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.leads if c.usable and c.name in LEAD_NAMES)

    @property
    def usable_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.leads if c.usable)

    def describe(self) -> str:
        label = f' "{self.label}"' if self.label else ""
        return f"group {self.number}{label}"


def _parse_group(number: int, item: Dataset) -> _Group:
    """A multiplex group's header and channels, checked; its samples are decoded later."""
    where = f"waveform group {number}"
    channels = _count(item, "NumberOfWaveformChannels", where=where)
    samples = _count(item, "NumberOfWaveformSamples", where=where)
    if channels is None or samples is None or channels < 1 or samples < 1:
        raise EcgError(
            "malformed", f"The {where} states no channels or no samples ({channels}, {samples})."
        )
    frequency = _number(item, "SamplingFrequency", where=where)
    if frequency is None or not (
        math.isfinite(frequency) and MIN_SAMPLING_FREQUENCY <= frequency <= MAX_SAMPLING_FREQUENCY
    ):
        raise EcgError(
            "invalid_sampling_frequency",
            f"The {where} has a sampling frequency of {frequency} Hz; an ECG is read at "
            f"{MIN_SAMPLING_FREQUENCY:g} Hz to {MAX_SAMPLING_FREQUENCY:g} Hz.",
        )
    if samples / frequency > MAX_DURATION_S:
        raise EcgError(
            "too_large",
            f"The {where} lasts {samples / frequency / 3600:.1f} h; at most 24 h are read.",
        )
    bits = _count(item, "WaveformBitsAllocated", where=where) or 0
    interpretation = _text(item, "WaveformSampleInterpretation")
    if interpretation in _COMPANDED:
        raise EcgError(
            "unsupported_samples",
            f"The {where} holds {_COMPANDED[interpretation]} audio samples, not ECG samples.",
        )
    dtype = _DTYPES.get((bits, interpretation))
    if dtype is None:
        raise EcgError(
            "unsupported_samples",
            f"The {where} has {bits} bit {interpretation or 'uninterpreted'} samples; "
            "8 bit SB/UB, 16 bit SS/US and 32 bit SL/UL samples are read.",
        )
    definitions = _element(item, "ChannelDefinitionSequence") or []
    if len(definitions) != channels:
        raise EcgError(
            "inconsistent_channels",
            f"The {where} states {channels} channels but defines {len(definitions)}.",
        )
    n_channels, n_samples = channels, samples
    data, data_vr = _waveform_data(item, where)
    expected = n_channels * n_samples * bits // 8
    if not (len(data) == expected or (expected % 2 == 1 and len(data) == expected + 1)):
        raise EcgError(
            "inconsistent_length",
            f"The {where} has {len(data)} bytes of samples; {n_channels} channels x "
            f"{n_samples} samples x {bits // 8} bytes are {expected}.",
        )
    leads = tuple(_channel(item, index, where) for index, item in enumerate(definitions, 1))
    return _Group(
        number=number,
        label=_text(item, "MultiplexGroupLabel"),
        original=_text(item, "WaveformOriginality").upper() != "DERIVED",
        channels=n_channels,
        samples=n_samples,
        frequency=frequency,
        offset_ms=_finite(_number(item, "MultiplexGroupTimeOffset", where=where)),
        dtype=dtype,
        data=data,
        data_vr=data_vr,
        leads=_unique_names(leads),
    )


def _waveform_data(item: Dataset, where: str) -> tuple[bytes, str]:
    try:
        element = item.data_element("WaveformData")
        value = element.value if element is not None else None
    except Exception as error:
        raise EcgError(
            "malformed", f"The Waveform Data of {where} cannot be read: {error}"
        ) from None
    if not isinstance(value, bytes) or not value:
        raise EcgError("inconsistent_length", f"The {where} has no Waveform Data.")
    return value, str(element.VR) if element is not None else "OW"


def _unique_names(channels: Iterable[_Channel]) -> tuple[_Channel, ...]:
    """Channels whose names repeat get their channel number, so no two leads share a name."""
    seen: set[str] = set()
    unique = []
    for index, channel in enumerate(channels, 1):
        if channel.name in seen:
            channel = _Channel(
                f"{channel.name} (channel {index})",
                False,
                channel.scale,
                channel.offset,
                channel.usable,
            )
        seen.add(channel.name)
        unique.append(channel)
    return tuple(unique)


def _choose(
    parsed: list[_Group], refusals: list[tuple[int, EcgError]], notes: list[str]
) -> list[_Group]:
    """The groups to present: the diagnostic one, plus those recorded with it or after it."""
    candidates = [g for g in parsed if g.usable_names]
    diagnostic = [g for g in candidates if not g.is_median]
    if refusals and not diagnostic:
        number, error = refusals[0]
        raise EcgError(error.reason, error.message)
    if not candidates:
        raise EcgError("no_waveform", "No waveform group of the ECG has a lead with a known scale.")
    pool = diagnostic or candidates
    primary = max(
        pool,
        key=lambda g: (g.original, len(g.standard_names), g.duration_s, -g.offset_ms, -g.number),
    )
    chosen = [primary]
    if primary.is_median or not primary.original:
        what = "a median or average beat" if primary.is_median else "derived"
        notes.append(f"The waveform shown is {what} ({primary.describe()}), not a recording.")
    for group in pool:
        if group is primary:
            continue
        if _simultaneous(primary, group) and not set(group.usable_names) & {
            name for g in chosen for name in g.usable_names
        }:
            chosen.append(group)
            notes.append(f"Leads of {group.describe()} are shown with {primary.describe()}.")
    chosen.extend(_continuations(primary, pool, notes))
    for group in parsed:
        if all(group is not taken for taken in chosen):
            what = "a median beat" if group.is_median else "another recording"
            notes.append(
                f"The file also holds {what} in {group.describe()} "
                f"({group.channels} channels, {group.duration_s:g} s), not shown."
            )
    for number, error in refusals:
        notes.append(f"Waveform group {number} was not read: {error.message}")
    return chosen


def _simultaneous(a: _Group, b: _Group) -> bool:
    return (
        a.frequency == b.frequency
        and a.samples == b.samples
        and abs(a.offset_ms - b.offset_ms) < 500.0 / a.frequency
    )


def _continuations(primary: _Group, pool: list[_Group], notes: list[str]) -> list[_Group]:
    """Groups with the primary's leads and frequency that start where the previous one ends."""
    following: list[_Group] = []
    end_ms = primary.offset_ms + primary.duration_s * 1000.0
    tolerance = 500.0 / primary.frequency
    others = sorted((g for g in pool if g is not primary), key=lambda g: g.offset_ms)
    for group in others:
        if (
            group.frequency == primary.frequency
            and group.usable_names == primary.usable_names
            and abs(group.offset_ms - end_ms) < tolerance
        ):
            following.append(group)
            end_ms += group.duration_s * 1000.0
            notes.append(
                f"{group.describe().capitalize()} continues the recording and is appended."
            )
    return following


# Channels ---------------------------------------------------------------------------------

# SCP-ECG lead numbers (5.6.3-9-n), shared by ISO/IEEE 11073 MDC_ECG_LEAD_* (2:n).
_LEAD_NUMBERS: dict[int, str] = {
    1: "I",
    2: "II",
    3: "V1",
    4: "V2",
    5: "V3",
    6: "V4",
    7: "V5",
    8: "V6",
    9: "V7",
    10: "V2R",
    11: "V3R",
    12: "V4R",
    13: "V5R",
    14: "V6R",
    15: "V7R",
    16: "X",
    17: "Y",
    18: "Z",
    19: "CC5",
    20: "CM5",
    31: "I",
    32: "II",
    33: "V1",
    34: "V2",
    35: "V3",
    36: "V4",
    37: "V5",
    38: "V6",
    61: "III",
    62: "aVR",
    63: "aVL",
    64: "aVF",
    65: "-aVR",
    66: "V8",
    67: "V9",
    68: "V8R",
    69: "V9R",
    70: "D",
    71: "A",
    72: "J",
    111: "III",
    112: "aVR",
    113: "aVL",
    114: "aVF",
}
_KNOWN_NAMES = {name.casefold(): name for name in _LEAD_NUMBERS.values()}
_MDC_PARTITION_2 = 2 << 16  # context-free MDC codes: partition x 65536 + term code
_SCP_LEAD = re.compile(r"5\.6\.3-9-(\d{1,3})")
_MDC_LEAD = re.compile(r"2:\s*(\d{1,3})")
_MDC_REFERENCE = re.compile(r"MDC_ECG_LEAD_(\w+)", re.IGNORECASE)

# Channel Sensitivity Units (UCUM is case-sensitive: "MV" would be megavolt) -> microvolts.
_VOLTS: dict[str, float] = {
    "nV": 1e-3,
    "uV": 1.0,
    "\u00b5V": 1.0,
    "\u03bcV": 1.0,
    "mV": 1e3,
    "V": 1e6,
}
_VOLT_MEANINGS: dict[str, float] = {
    "nanovolt": 1e-3,
    "microvolt": 1.0,
    "millivolt": 1e3,
    "volt": 1e6,
}
MAX_UV_PER_UNIT = 10_000.0
"""A stored unit worth more than 10 mV is no ECG calibration."""


def _channel(item: Dataset, index: int, where: str) -> _Channel:
    """One channel definition: its lead name and its scale to microvolts."""
    name, standard = _lead_name(item, index)
    at = f"channel {index} ({name}) of {where}"
    sensitivity = _number(item, "ChannelSensitivity", where=at)
    units = _element(item, "ChannelSensitivityUnitsSequence")
    unit = units[0] if units else None
    if sensitivity is None or unit is None:
        if not standard:
            return _Channel(name, False, 0.0, 0.0, usable=False)
        missing = "Channel Sensitivity" if sensitivity is None else "its units"
        raise EcgError(
            "missing_sensitivity",
            f"Lead {name} ({at}) has no {missing}: its samples have no known scale in microvolts.",
        )
    to_uv = _microvolts_per_unit(unit)
    if to_uv is None:
        if not standard:
            return _Channel(name, False, 0.0, 0.0, usable=False)
        code = _text(unit, "CodeValue") or _text(unit, "CodeMeaning")
        raise EcgError(
            "unsupported_units", f"Lead {name} ({at}) is in {code!r}, which is not a voltage."
        )
    correction = _number(item, "ChannelSensitivityCorrectionFactor", where=at)
    correction = 1.0 if correction is None else correction
    baseline = _number(item, "ChannelBaseline", where=at) or 0.0
    scale = sensitivity * correction * to_uv
    if not (
        math.isfinite(scale)
        and 0 < scale <= MAX_UV_PER_UNIT
        and sensitivity > 0
        and correction > 0
        and math.isfinite(baseline)
    ):
        raise EcgError(
            "invalid_sensitivity",
            f"Lead {name} ({at}) has sensitivity {sensitivity:g}, correction {correction:g} and "
            f"baseline {baseline:g}: not a usable calibration.",
        )
    return _Channel(name, standard, scale, baseline * to_uv, usable=True)


def _microvolts_per_unit(unit: Dataset) -> float | None:
    code = _text(unit, "CodeValue")
    if code in _VOLTS:
        return _VOLTS[code]
    meaning = _text(unit, "CodeMeaning").casefold().rstrip("s")
    return _VOLT_MEANINGS.get(meaning)


def _lead_name(item: Dataset, index: int) -> tuple[str, bool]:
    """(name, is an ECG lead) from the channel's source code, code meaning or label."""
    sources = _element(item, "ChannelSourceSequence")
    source = sources[0] if sources else None
    if source is not None:
        found = _coded_lead(_text(source, "CodeValue"), _text(source, "CodingSchemeDesignator"))
        found = found or _named_lead(_text(source, "CodeMeaning"))
        if found:
            return found, True
    label = _text(item, "ChannelLabel")
    found = _named_lead(label)
    if found:
        return found, True
    fallback = label or (_text(source, "CodeMeaning") if source is not None else "")
    return (fallback[:64] or f"Channel {index}"), False


def _coded_lead(value: str, scheme: str) -> str | None:
    scheme = scheme.upper()
    match = _SCP_LEAD.fullmatch(value) if scheme == "SCPECG" else None
    if scheme == "MDC":
        match = _MDC_LEAD.fullmatch(value)
        if match is None and value.isdigit() and int(value) > _MDC_PARTITION_2:
            return _LEAD_NUMBERS.get(int(value) - _MDC_PARTITION_2)
        reference = _MDC_REFERENCE.fullmatch(value)
        if match is None and reference:
            return _named_lead(reference.group(1))
    return _LEAD_NUMBERS.get(int(match.group(1))) if match else None


def _named_lead(text: str) -> str | None:
    """'Lead I (Einthoven)', 'aVR, augmented voltage, right', 'Derived Lead III', 'V1' -> name."""
    words = re.split(r"[,(]", text, maxsplit=1)[0].strip()
    words = re.sub(r"^(derived\s+)?(lead\s+)?", "", words, flags=re.IGNORECASE).strip()
    return _KNOWN_NAMES.get(words.casefold())


# Samples -------------------------------------------------------------------------------------


def _decode(group: _Group, big_endian: bool) -> npt.NDArray[Any]:
    """The stored samples as (samples, channels)."""
    data = group.data
    width = int(group.dtype[1])
    if big_endian:
        if width > 2:
            raise EcgError(
                "unsupported_samples",
                f"{group.describe().capitalize()}: {8 * width} bit samples in big endian are "
                "not read.",
            )
        if group.data_vr == "OW":
            data = swapped(data, 2)  # each OW word is big endian: now little endian
    count = group.channels * group.samples
    raw = np.frombuffer(data, dtype=np.dtype(group.dtype).newbyteorder("<"), count=count)
    return raw.reshape(group.samples, group.channels)


def _calibrated_leads(groups: list[_Group], big_endian: bool, notes: list[str]) -> list[Lead]:
    """The usable channels of the chosen groups, in microvolts; later parts appended in time."""
    primary = groups[0]
    columns: dict[str, list[Samples]] = {}
    for group in groups:
        raw = _decode(group, big_endian)
        for index, channel in enumerate(group.leads):
            if not channel.usable:
                if group is primary:
                    notes.append(
                        f"Channel {index + 1} ({channel.name}) has no voltage scale: not shown."
                    )
                continue
            values = raw[:, index].astype(np.float64) * channel.scale + channel.offset
            columns.setdefault(channel.name, []).append(values)
    lengths = {sum(len(part) for part in parts) for parts in columns.values()}
    if len(lengths) > 1:  # groups joined side by side have equal lengths; defensive
        raise EcgError("inconsistent_length", "The joined waveform groups differ in length.")
    return [
        Lead(name, np.concatenate(parts) if len(parts) > 1 else parts[0], derived=False)
        for name, parts in columns.items()
    ]


def _with_derived_leads(leads: list[Lead], notes: list[str]) -> list[Lead]:
    """The limb leads that are missing, computed from two of I, II and III."""
    have = {lead.name: lead.samples_uv for lead in leads}
    derived: dict[str, Samples] = {}
    limb = [name for name in ("I", "II", "III") if name in have]
    if len(limb) == 2:
        if "III" not in have:
            derived["III"] = have["II"] - have["I"]
        elif "II" not in have:
            derived["II"] = have["I"] + have["III"]
        else:
            derived["I"] = have["II"] - have["III"]
    full = have | derived
    if "I" in full and "II" in full:
        one, two = full["I"], full["II"]
        for name, values in (
            ("aVR", -(one + two) / 2.0),
            ("aVL", one - two / 2.0),
            ("aVF", two - one / 2.0),
        ):
            if name not in have:
                derived[name] = values
    if derived:
        sources = " and ".join(name for name in ("I", "II", "III") if name in have)
        notes.append(
            f"{_listed(derived)} {'is' if len(derived) == 1 else 'are'} computed from "
            f"{sources}, not stored in the file."
        )
    return leads + [Lead(name, values, derived=True) for name, values in derived.items()]


def _note_missing(leads: list[Lead], notes: list[str]) -> None:
    names = {lead.name for lead in leads}
    missing = [name for name in LEAD_NAMES if name not in names]
    if len(missing) == len(LEAD_NAMES):
        notes.append("No standard 12-lead ECG lead is identified; channels are shown as labelled.")
    elif missing:
        notes.append(f"Not in the file: {_listed(missing)}.")


def _listed(names: Iterable[str]) -> str:
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ordered(leads: list[Lead]) -> Iterator[Lead]:
    by_name = {lead.name: lead for lead in leads}
    yield from (by_name[name] for name in LEAD_NAMES if name in by_name)
    yield from (lead for lead in leads if lead.name not in LEAD_NAMES)


# Device measurements -------------------------------------------------------------------------

_Kind = Literal["ms", "bpm", "deg"]
_KEY_KIND: dict[str, _Kind] = {
    "heart_rate_bpm": "bpm",
    "rr_ms": "ms",
    "pr_ms": "ms",
    "qrs_ms": "ms",
    "qt_ms": "ms",
    "qtc_bazett_ms": "ms",
    "qtc_fridericia_ms": "ms",
    "qtc_ms": "ms",
    "qrs_axis_deg": "deg",
    "p_axis_deg": "deg",
    "t_axis_deg": "deg",
}
_PLAUSIBLE: dict[_Kind, tuple[float, float]] = {
    "ms": (1.0, 10_000.0),
    "bpm": (1.0, 500.0),
    "deg": (-180.0, 360.0),
}
_CODES: dict[tuple[str, str], str] = {
    # SCP-ECG (the Mortara file of pydicom uses these)
    ("SCPECG", "5.10.2.1-3"): "rr_ms",
    ("SCPECG", "5.13.5-7"): "pr_ms",
    ("SCPECG", "5.13.5-9"): "qrs_ms",
    ("SCPECG", "5.13.5-11"): "qt_ms",
    ("SCPECG", "5.10.2.5-5"): "qtc_ms",
    ("SCPECG", "5.10.3-11"): "p_axis_deg",
    ("SCPECG", "5.10.3-13"): "qrs_axis_deg",
    ("SCPECG", "5.10.3-15"): "t_axis_deg",
    # ISO/IEEE 11073-10102 (TID 3713 ECG Global Measurements; CID 3227, 3229, 3689)
    ("MDC", "2:16016"): "heart_rate_bpm",  # Ventricular Heart Rate
    ("MDC", "2:16770"): "heart_rate_bpm",  # MDC_ECG_HEART_RATE
    ("MDC", "2:16000"): "rr_ms",  # RR time period, global
    ("MDC", "2:16168"): "rr_ms",  # RR interval global
    ("MDC", "2:15872"): "pr_ms",  # PR interval global
    ("MDC", "2:16156"): "qrs_ms",  # QRS duration global
    ("MDC", "2:16160"): "qt_ms",  # QT interval global
    ("MDC", "2:15876"): "qtc_ms",  # QTc interval global (formula not named)
    ("MDC", "2:15880"): "qtc_bazett_ms",
    ("MDC", "2:15892"): "qtc_fridericia_ms",
    ("MDC", "2:16128"): "p_axis_deg",
    ("MDC", "2:16132"): "qrs_axis_deg",
    ("MDC", "2:16136"): "t_axis_deg",
    ("MDC", "MDC_ECG_HEART_RATE"): "heart_rate_bpm",
    ("MDC", "MDC_ECG_TIME_PD_RR"): "rr_ms",
    ("MDC", "MDC_ECG_TIME_PD_PR"): "pr_ms",
    ("MDC", "MDC_ECG_TIME_PD_QRS"): "qrs_ms",
    ("MDC", "MDC_ECG_TIME_PD_QT"): "qt_ms",
    ("MDC", "MDC_ECG_TIME_PD_QTc"): "qtc_ms",
    ("MDC", "MDC_ECG_TIME_PD_QTcB"): "qtc_bazett_ms",
    ("MDC", "MDC_ECG_TIME_PD_QTcF"): "qtc_fridericia_ms",
    ("MDC", "MDC_ECG_ANGLE_P_FRONT"): "p_axis_deg",
    ("MDC", "MDC_ECG_ANGLE_QRS_FRONT"): "qrs_axis_deg",
    ("MDC", "MDC_ECG_ANGLE_T_FRONT"): "t_axis_deg",
    # LOINC and DICOM
    ("LN", "8867-4"): "heart_rate_bpm",
    ("LN", "8625-6"): "pr_ms",
    ("LN", "8633-0"): "qrs_ms",
    ("LN", "8634-8"): "qt_ms",
    ("LN", "8636-3"): "qtc_ms",
    ("LN", "8626-4"): "p_axis_deg",
    ("LN", "8632-2"): "qrs_axis_deg",
    ("LN", "8638-9"): "t_axis_deg",
    ("DCM", "122182"): "rr_ms",
}
_MEANINGS: dict[str, str] = {
    "heart rate": "heart_rate_bpm",
    "ventricular rate": "heart_rate_bpm",
    "ventricular heart rate": "heart_rate_bpm",
    "rr interval": "rr_ms",
    "pr interval": "pr_ms",
    "qrs duration": "qrs_ms",
    "qt interval": "qt_ms",
    "qtc interval": "qtc_ms",
    "qtc": "qtc_ms",
    "qtc bazett": "qtc_bazett_ms",
    "qtc global using bazett formula": "qtc_bazett_ms",
    "qtc fridericia": "qtc_fridericia_ms",
    "qtc global using fridericia formula": "qtc_fridericia_ms",
    "qtc global using fredericia formula": "qtc_fridericia_ms",
    "p axis": "p_axis_deg",
    "qrs axis": "qrs_axis_deg",
    "r axis": "qrs_axis_deg",
    "t axis": "t_axis_deg",
}
_UNITS: dict[str, tuple[_Kind, float]] = {
    "ms": ("ms", 1.0),
    "s": ("ms", 1000.0),
    "/min": ("bpm", 1.0),
    "1/min": ("bpm", 1.0),
    "{H.B.}/min": ("bpm", 1.0),
    "{beats}/min": ("bpm", 1.0),
    "{beat}/min": ("bpm", 1.0),
    "bpm": ("bpm", 1.0),
    "deg": ("deg", 1.0),
    "\u00b0": ("deg", 1.0),
}


def _device_measurements(dataset: Dataset, notes: list[str]) -> DeviceMeasurements:
    """The device's global measurements and statements from the Waveform Annotation Sequence."""
    values: dict[str, float] = {}
    statements: list[str] = []
    try:
        annotations = _element(dataset, "WaveformAnnotationSequence") or []
    except EcgError as error:
        notes.append(f"The device's measurements were not read: {error.message}")
        annotations = []
    unread: list[str] = []
    for annotation in annotations:
        try:
            text = _text(annotation, "UnformattedTextValue")
            found = _measurement(annotation)
        except EcgError as error:
            unread.append(error.message)
            continue
        if text and len(statements) < MAX_STATEMENTS:
            statements.append(text[:MAX_STATEMENT_LENGTH])
        if found is not None:
            values.setdefault(*found)
    notes.extend(f"A device measurement was not read: {message}" for message in unread[:5])
    if len(unread) > 5:
        notes.append(f"{len(unread) - 5} more device annotations could not be read.")
    if "heart_rate_bpm" not in values and "rr_ms" in values:
        values["heart_rate_bpm"] = round(60_000.0 / values["rr_ms"], 1)
    if "rr_ms" not in values and "heart_rate_bpm" in values:
        values["rr_ms"] = round(60_000.0 / values["heart_rate_bpm"], 1)
    return DeviceMeasurements(**values, statements=tuple(statements))  # type: ignore[arg-type]


def _measurement(annotation: Dataset) -> tuple[str, float] | None:
    """(key, value in the key's unit) of a global numeric annotation, else None."""
    value = _number(annotation, "NumericValue", where="a waveform annotation")
    if value is None:  # a fiducial point or a statement (open_dataset keeps no other item)
        return None
    names = _element(annotation, "ConceptNameCodeSequence")
    if not names or _names_one_channel(annotation):
        return None
    concept = names[0]
    scheme, code = _text(concept, "CodingSchemeDesignator").upper(), _text(concept, "CodeValue")
    meaning = _text(concept, "CodeMeaning")
    key = _CODES.get((scheme, code)) or _MEANINGS.get(
        re.sub(r"[^a-z0-9 ]", "", meaning.casefold().replace("-", "")).strip()
    )
    if key is None:
        return None
    units = _element(annotation, "MeasurementUnitsCodeSequence")
    unit = _text(units[0], "CodeValue") if units else ""
    kind, factor = _UNITS.get(unit, (None, 1.0))
    if kind != _KEY_KIND[key]:
        raise EcgError("malformed", f"{meaning or key} is given in {unit or 'no unit'!r}.")
    converted = value * factor
    low, high = _PLAUSIBLE[kind]
    if not (math.isfinite(converted) and low <= converted <= high):
        return None  # devices write 0 or out-of-range values for "not measured"
    return key, converted


def _names_one_channel(annotation: Dataset) -> bool:
    """True when Referenced Waveform Channels name particular channels (a per-lead value)."""
    channels = _element(annotation, "ReferencedWaveformChannels")
    if channels is None:
        return False
    pairs = list(channels) if isinstance(channels, Iterable) else [channels]
    return any(int(c) != 0 for c in pairs[1::2])


def whole_microvolts(samples: Samples) -> npt.NDArray[np.int64]:
    """Samples rounded to whole microvolts (half to even): what the ECG API and its SVG show."""
    return np.rint(samples).astype(np.int64)
