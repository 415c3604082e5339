"""HL7 aECG (annotated ECG, HL7 v3 2003-12 ballot, the FDA format) read into calibrated leads.

The document is parsed with defusedxml: a DOCTYPE, an entity declaration or an external
reference is refused, never expanded or fetched. Only the rhythm series
(``AnnotatedECG/component/series``) is imported; the representative beats of a
``derivedSeries`` are not waveforms of the recording. Each ``sequence`` of a
``sequenceSet`` is either the time axis (``TIME_ABSOLUTE`` with a ``GLIST_TS`` or
``TIME_RELATIVE`` with a ``GLIST_PQ``: its increment is the sampling interval) or a lead
(``MDC_ECG_LEAD_*`` with an ``SLIST_PQ``: value = origin + scale x digit, in uV, mV or V).
Leads the document does not carry (often III, aVR, aVL, aVF) are not invented here.

Subject demographics, the acquisition time, the device and the annotations (rhythm
statements and interval measurements) come along when the document has them.
Every function blocks.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

import numpy as np
import numpy.typing as npt
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from dicom_tools.ecg import LEAD_NAMES
from dicom_tools.ecg_encoding import MAX_SAMPLES, PatientIdentity, part10, twelve_lead_ecg
from dicom_tools.errors import ReasonedError

AecgReason = Literal[
    "not_xml",
    "forbidden_xml",
    "not_aecg",
    "no_leads",
    "inconsistent_leads",
    "unknown_unit",
    "invalid_value",
    "no_sampling_rate",
    "too_large",
    "too_short",
]
"""Stable codes of :class:`AecgError`.

- ``not_xml``: the bytes are not well-formed XML (truncated, wrong encoding...).
- ``forbidden_xml``: a DOCTYPE, entity declaration or external reference (never expanded).
- ``not_aecg``: well-formed XML whose root is not ``AnnotatedECG`` in ``urn:hl7-org:v3``.
- ``no_leads``: no rhythm series with lead data (``MDC_ECG_LEAD_*`` sequences).
- ``inconsistent_leads``: leads of one recording differ in length, or a lead appears twice.
- ``unknown_unit``: a voltage or time unit other than uV/mV/V and us/ms/s.
- ``invalid_value``: a number that cannot be read (digits, origin, scale, increment).
- ``no_sampling_rate``: no time sequence with a usable increment.
- ``too_large``: more samples or a higher sampling frequency than accepted.
- ``too_short``: a recording too short to be read as an ECG (see ``MIN_DURATION_S``).
"""

HL7 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
MAX_SAMPLES_PER_LEAD = MAX_SAMPLES
"""The 12-Lead ECG IOD's limit (PS3.3 A.34.3.4): a longer recording is refused, not cut."""
MAX_SAMPLING_FREQUENCY = 20_000.0
MAX_ELEMENTS = 200_000
"""XML elements accepted in one document (the FDA's 10 s 12-lead example has 1,463)."""
MIN_DURATION_S = 1.0
"""Shorter recordings (such as the 13-sample minimum aECG, 26 ms) hold no beat to read."""

LEAD_CODES: Mapping[str, str] = {
    "MDC_ECG_LEAD_I": "I",
    "MDC_ECG_LEAD_II": "II",
    "MDC_ECG_LEAD_III": "III",
    "MDC_ECG_LEAD_AVR": "aVR",
    "MDC_ECG_LEAD_AVL": "aVL",
    "MDC_ECG_LEAD_AVF": "aVF",
    **{f"MDC_ECG_LEAD_V{n}": f"V{n}" for n in range(1, 7)},
}
"""MDC lead codes of the standard 12 leads, and their names."""

_VOLTS_IN_UV = {"uV": 1.0, "mV": 1_000.0, "V": 1_000_000.0, "nV": 0.001}
_SECONDS = {"s": 1.0, "ms": 0.001, "us": 0.000_001}
_MEASUREMENTS: Mapping[str, tuple[str, str]] = {
    "MDC_ECG_HEART_RATE": ("heart_rate_bpm", "/min"),
    "MDC_ECG_TIME_PD_RR": ("rr_ms", "ms"),
    "MDC_ECG_TIME_PD_PR": ("pr_ms", "ms"),
    "MDC_ECG_TIME_PD_QRS": ("qrs_ms", "ms"),
    "MDC_ECG_TIME_PD_QT": ("qt_ms", "ms"),
    "MDC_ECG_TIME_PD_QTc": ("qtc_ms", "ms"),
    "MDC_ECG_ANGLE_P_FRONT": ("p_axis_deg", "deg"),
    "MDC_ECG_ANGLE_QRS_FRONT": ("qrs_axis_deg", "deg"),
    "MDC_ECG_ANGLE_T_FRONT": ("t_axis_deg", "deg"),
}
"""Global annotations kept as device measurements, by the names the ECG reader reports.

An aECG QTc does not say its formula, so it is ``qtc_ms``, not Bazett's or Fridericia's.
"""
_RATE_UNITS = {"/min": 1.0, "bpm": 1.0, "{beats}/min": 1.0, "1/min": 1.0}
_TS = re.compile(r"([0-9]{4})([0-9]{2})?([0-9]{2})?([0-9]{2})?([0-9]{2})?([0-9]{2})?(\.[0-9]+)?")


class AecgError(ReasonedError[AecgReason]):
    """An aECG document was refused: the reason code and a plain message."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who the ECG is of, as the document says (any part may be absent)."""

    name: str | None = None
    identifier: str | None = None
    birth_date: str | None = None  # YYYYMMDD
    sex: str | None = None  # M, F, O or U


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotation: a coded measurement (value, unit) or a coded/text statement."""

    code: str
    value: float | None = None
    unit: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AecgRecording:
    """The rhythm recording of an aECG document, calibrated to microvolts."""

    leads: Mapping[str, npt.NDArray[np.float64]]
    """Microvolts by standard lead name, in the standard order; only the leads present."""
    sampling_frequency: float
    resolution_uv: float | None
    """The quantum of every lead's values in uV (the common scale), when they share one."""
    subject: Subject | None = None
    acquired: datetime | None = None
    manufacturer: str | None = None
    model: str | None = None
    annotations: tuple[Annotation, ...] = ()
    measurements: Mapping[str, float] = field(default_factory=dict)
    """The document's global measurements (``pr_ms``, ``qtc_ms``, ``qrs_axis_deg``...)."""
    statements: tuple[str, ...] = ()
    """The document's interpretation statements (rhythm and the like), as display text."""
    notes: tuple[str, ...] = ()
    """What was left out (other series, unknown leads), in plain language."""

    @property
    def samples(self) -> int:
        """Samples per lead."""
        return len(next(iter(self.leads.values())))

    @property
    def duration_s(self) -> float:
        """The recording's length in seconds."""
        return self.samples / self.sampling_frequency


def _tag(name: str) -> str:
    return f"{{{HL7}}}{name}"


def _children(element: Element, *path: str) -> Iterator[Element]:
    """Elements under ``element`` along the path of HL7 names (every branch)."""
    if not path:
        yield element
        return
    for child in element.findall(_tag(path[0])):
        yield from _children(child, *path[1:])


def _first(element: Element, *path: str) -> Element | None:
    return next(_children(element, *path), None)


def _code(element: Element) -> str:
    code = element.find(_tag("code"))
    return (code.get("code") or "").strip() if code is not None else ""


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _number(value: str | None, what: str) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise AecgError("invalid_value", f"The {what} is not a number: {value!r:.40}.") from None
    if not math.isfinite(number):
        raise AecgError("invalid_value", f"The {what} is not a finite number: {value!r:.40}.")
    return number


def _microvolts(element: Element | None, what: str, lead: str) -> float:
    if element is None:
        raise AecgError("invalid_value", f"Lead {lead} has no {what}.")
    unit = element.get("unit", "")
    if unit not in _VOLTS_IN_UV:
        raise AecgError(
            "unknown_unit",
            f"Lead {lead}'s {what} is in {unit or 'no unit'!r:.20}; uV, mV or V are read.",
        )
    return _number(element.get("value"), f"{what} of lead {lead}") * _VOLTS_IN_UV[unit]


def parse_timestamp(value: str | None) -> datetime | None:
    """An HL7 TS (YYYYMMDDHHMMSS[.fff], any precision from the year) as a naive datetime."""
    found = _TS.match((value or "").strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()
    try:
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            round(float(fraction or 0) * 1_000_000) if fraction else 0,
        )
    except ValueError:
        return None


def _parse(data: bytes) -> Element:
    """The document's root, refusing more than MAX_ELEMENTS elements as they are parsed."""
    root: Element | None = None
    events = iterparse(
        io.BytesIO(data),
        events=("start",),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    for count, (_, element) in enumerate(events, start=1):
        root = element if root is None else root
        if count > MAX_ELEMENTS:
            raise AecgError("too_large", f"The document has more than {MAX_ELEMENTS} XML elements.")
    if root is None:
        raise AecgError("not_xml", "The document holds no XML element.")
    return root


def _root(data: bytes) -> Element:
    try:
        root = _parse(data)
    except DefusedXmlException:
        raise AecgError(
            "forbidden_xml",
            "The XML declares a DOCTYPE, entities or external references; aECG needs none "
            "and they are not accepted.",
        ) from None
    except ParseError as error:
        raise AecgError("not_xml", f"The document is not well-formed XML: {error}.") from None
    except (ValueError, UnicodeError, RecursionError):
        raise AecgError("not_xml", "The document is not readable XML.") from None
    if root.tag != _tag("AnnotatedECG"):
        raise AecgError(
            "not_aecg",
            f"The XML root is {root.tag[:80]!r}, not AnnotatedECG in the HL7 v3 namespace "
            f"({HL7}): this is not an HL7 aECG document.",
        )
    return root


def _sampling_interval(sequence: Element) -> float:
    """Seconds between samples, from a GLIST_TS / GLIST_PQ time sequence's increment."""
    value = sequence.find(_tag("value"))
    increment = value.find(_tag("increment")) if value is not None else None
    if increment is None:
        raise AecgError(
            "no_sampling_rate",
            "The time sequence has no increment (a GLIST with head and increment is read).",
        )
    unit = increment.get("unit", "")
    if unit not in _SECONDS:
        raise AecgError(
            "unknown_unit", f"The sampling interval is in {unit or 'no unit'!r:.20}; s or ms."
        )
    seconds = _number(increment.get("value"), "sampling interval") * _SECONDS[unit]
    if seconds <= 0:
        raise AecgError("no_sampling_rate", "The sampling interval is not positive.")
    if 1 / seconds > MAX_SAMPLING_FREQUENCY:
        raise AecgError(
            "too_large", f"The sampling frequency {1 / seconds:g} Hz is beyond what is read."
        )
    return seconds


def _digits(text: str | None, lead: str) -> npt.NDArray[np.float64]:
    words = (text or "").split(maxsplit=MAX_SAMPLES_PER_LEAD)  # bounded: no huge list
    if len(words) > MAX_SAMPLES_PER_LEAD:
        raise AecgError(
            "too_large",
            f"Lead {lead} has more than {MAX_SAMPLES_PER_LEAD} samples, the most a "
            "12-lead ECG holds.",
        )
    try:
        digits = np.array([int(w) for w in words], dtype=np.float64)
    except ValueError:
        raise AecgError("invalid_value", f"Lead {lead}'s digits are not all integers.") from None
    if digits.size and float(np.max(np.abs(digits))) > 2.0**31:
        raise AecgError("invalid_value", f"Lead {lead}'s digits are out of range.")
    return digits


@dataclass(slots=True)
class _Set:
    """What one sequenceSet holds: its sampling interval and its leads."""

    interval: float | None = None
    leads: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    scales: set[float] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)


def _read_set(sequence_set: Element) -> _Set:
    found = _Set()
    for sequence in _children(sequence_set, "component", "sequence"):
        code = _code(sequence)
        if code in ("TIME_ABSOLUTE", "TIME_RELATIVE"):
            found.interval = _sampling_interval(sequence)
            continue
        if not code.startswith("MDC_ECG_LEAD_"):
            continue
        name = LEAD_CODES.get(code)
        if name is None:
            found.ignored.append(code.removeprefix("MDC_ECG_LEAD_"))
            continue
        if name in found.leads:
            raise AecgError("inconsistent_leads", f"Lead {name} appears twice in one recording.")
        value = sequence.find(_tag("value"))
        if value is None or value.get(XSI_TYPE, "").split(":")[-1] != "SLIST_PQ":
            raise AecgError(
                "invalid_value", f"Lead {name}'s value is not an SLIST_PQ (origin, scale, digits)."
            )
        origin = _microvolts(value.find(_tag("origin")), "origin", name)
        scale = _microvolts(value.find(_tag("scale")), "scale", name)
        if scale <= 0:
            raise AecgError("invalid_value", f"Lead {name}'s scale is not positive.")
        found.leads[name] = origin + scale * _digits(_text(value.find(_tag("digits"))), name)
        found.scales.add(scale)
    return found


def _rhythm_series(root: Element) -> tuple[Element | None, list[str]]:
    """The first rhythm series (coded RHYTHM, or not coded), and notes on what is skipped."""
    series = list(_children(root, "component", "series"))
    rhythm = [s for s in series if _code(s) in ("RHYTHM", "")]
    notes = []
    if len(rhythm) > 1:
        notes.append(f"The document has {len(rhythm)} rhythm series; the first is imported.")
    if len(series) > len(rhythm):
        notes.append("Series other than rhythm waveforms are not imported.")
    if rhythm and _first(rhythm[0], "derivation", "derivedSeries") is not None:
        notes.append("Representative beats (derived series) are not imported as waveforms.")
    return (rhythm[0] if rhythm else None), notes


def _recording_sets(series: Element | None) -> list[_Set]:
    """The sequenceSets of the rhythm series that hold leads."""
    if series is None:
        return []
    sets = [_read_set(s) for s in _children(series, "component", "sequenceSet")]
    return [s for s in sets if s.leads]


def _merged(sets: list[_Set], notes: list[str]) -> _Set:
    """One recording: sets of disjoint leads that share a time base merge; others are noted."""
    merged = _Set(interval=sets[0].interval)
    for index, one in enumerate(sets):
        lengths = {len(v) for v in [*merged.leads.values(), *one.leads.values()]}
        if index and (
            one.interval != merged.interval
            or len(lengths) > 1
            or set(one.leads) & set(merged.leads)
        ):
            notes.append(
                f"A further set of leads ({', '.join(one.leads)}) recorded apart is not imported."
            )
            continue
        merged.leads.update(one.leads)
        merged.scales |= one.scales
        merged.ignored += one.ignored
    return merged


def _subject(root: Element) -> Subject | None:
    trial_subject = _first(
        root, "componentOf", "timepointEvent", "componentOf", "subjectAssignment", "subject",
        "trialSubject",
    )  # fmt: skip
    if trial_subject is None:
        return None
    person = _first(trial_subject, "subjectDemographicPerson")
    identifier = trial_subject.find(_tag("id"))
    name = _text(person.find(_tag("name"))) if person is not None else None
    gender = person.find(_tag("administrativeGenderCode")) if person is not None else None
    birth = person.find(_tag("birthTime")) if person is not None else None
    born = parse_timestamp(birth.get("value")) if birth is not None else None
    sex = (gender.get("code") or "").upper() if gender is not None else ""
    found = Subject(
        name=name,
        identifier=(identifier.get("extension") or None) if identifier is not None else None,
        birth_date=born.strftime("%Y%m%d") if born is not None else None,
        sex={"M": "M", "F": "F", "UN": "O", "U": "U"}.get(sex),
    )
    return found if found != Subject() else None


def _acquired(root: Element) -> datetime | None:
    time = _first(root, "effectiveTime")
    if time is None:
        return None
    for part in ("center", "low"):
        point = time.find(_tag(part))
        if point is not None and (when := parse_timestamp(point.get("value"))) is not None:
            return when
    return None


def _device(series: Element) -> tuple[str | None, str | None]:
    author = _first(series, "author", "seriesAuthor")
    if author is None:
        return None, None
    manufacturer = _text(_first(author, "manufacturerOrganization", "name"))
    model = _text(_first(author, "manufacturedSeriesDevice", "manufacturerModelName"))
    return manufacturer, model


def _annotation(element: Element) -> Annotation | None:
    code = _code(element)
    value = element.find(_tag("value"))
    if not code or value is None:
        return None
    kind = value.get(XSI_TYPE, "").split(":")[-1]
    if kind == "PQ":
        try:
            number = _number(value.get("value"), f"annotation {code}")
        except AecgError:
            return None
        return Annotation(code=code, value=number, unit=value.get("unit"))
    if kind == "CE":
        text = value.get("displayName") or value.get("code")
        return Annotation(code=code, text=text) if text else None
    if kind == "ST":
        text = _text(value)
        return Annotation(code=code, text=text) if text else None
    return None


def _global_annotations(series: Element) -> tuple[Annotation, ...]:
    """The recording-level annotations: the rhythm series' own and its representative beat's.

    Per-beat annotations (those under an ``MDC_ECG_BEAT``) are not taken: they repeat for
    every beat what the global ones state once.
    """
    found: list[Annotation] = []
    for scope in [series, *_children(series, "derivation", "derivedSeries")]:
        for annotation_set in _children(scope, "subjectOf", "annotationSet"):
            pending = list(_children(annotation_set, "component", "annotation"))
            while pending:
                element = pending.pop(0)
                if _code(element) == "MDC_ECG_BEAT":
                    continue
                if (one := _annotation(element)) is not None:
                    found.append(one)
                pending.extend(_children(element, "component", "annotation"))
    return tuple(found)


def _measurements(annotations: tuple[Annotation, ...]) -> dict[str, float]:
    found: dict[str, float] = {}
    for one in annotations:
        target = _MEASUREMENTS.get(one.code)
        if target is None or one.value is None:
            continue
        key, unit = target
        scale = (
            _RATE_UNITS.get(one.unit or "")
            if unit == "/min"
            else 1000 * _SECONDS[one.unit]
            if unit == "ms" and one.unit in _SECONDS
            else 1.0
            if one.unit == unit
            else None
        )
        if scale is None:
            continue
        found.setdefault(key, one.value * scale)  # the first global value of a kind
    return found


def _statements(annotations: tuple[Annotation, ...]) -> tuple[str, ...]:
    texts = [
        one.text
        for one in annotations
        if one.text and (one.code.startswith("MDC_ECG_RHY") or "INTERPRET" in one.code)
    ]
    return tuple(dict.fromkeys(texts))


def read_aecg(data: bytes) -> AecgRecording:
    """The rhythm recording of an HL7 aECG document; raises AecgError with a reason."""
    root = _root(data)
    series, notes = _rhythm_series(root)
    sets = _recording_sets(series)
    if series is None or not sets:
        raise AecgError(
            "no_leads",
            "The document has no rhythm series with lead data (MDC_ECG_LEAD_* sequences).",
        )
    recording = _merged(sets, notes)
    if recording.interval is None:
        raise AecgError(
            "no_sampling_rate", "The recording has no time sequence giving its sampling interval."
        )
    lengths = {name: len(values) for name, values in recording.leads.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise AecgError(
            "inconsistent_leads", f"The leads differ in their number of samples ({shown})."
        )
    frequency = 1 / recording.interval
    samples = next(iter(lengths.values()))
    if samples / frequency < MIN_DURATION_S:
        raise AecgError(
            "too_short",
            f"The recording is {1000 * samples / frequency:.0f} ms long ({samples} samples); "
            f"at least {MIN_DURATION_S:g} s is needed to read an ECG.",
        )
    if recording.ignored:
        notes.append(f"Leads other than the standard 12 are not imported: {recording.ignored}.")
    manufacturer, model = _device(series)
    annotations = _global_annotations(series)
    return AecgRecording(
        leads={name: recording.leads[name] for name in LEAD_NAMES if name in recording.leads},
        sampling_frequency=round(frequency, 6),
        resolution_uv=next(iter(recording.scales)) if len(recording.scales) == 1 else None,
        subject=_subject(root),
        acquired=_acquired(root),
        manufacturer=manufacturer,
        model=model,
        annotations=annotations,
        measurements=_measurements(annotations),
        statements=_statements(annotations),
        notes=tuple(notes),
    )


def subject_identity(subject: Subject | None) -> PatientIdentity | None:
    """The document's subject as DICOM patient attributes; None when it names nobody."""
    if subject is None:
        return None
    return PatientIdentity(
        name=subject.name or "",
        patient_id=subject.identifier or "",
        birth_date=subject.birth_date or "",
        sex=subject.sex if subject.sex in ("M", "F", "O") else "",
    )


def aecg_to_dicom(
    data: bytes, *, patient: PatientIdentity | None = None, now: datetime | None = None
) -> tuple[AecgRecording, bytes]:
    """An aECG document converted to a Part 10 12-Lead ECG instance, and what was read.

    The document's subject becomes the instance's patient; ``patient`` (the uploader's
    choice) stands in when the document names nobody. Raises AecgError, or
    EcgEncodingError for a recording the 12-Lead ECG IOD cannot hold.
    """
    recording = read_aecg(data)
    dataset = twelve_lead_ecg(
        recording.leads,
        recording.sampling_frequency,
        patient=subject_identity(recording.subject) or patient,
        acquired=recording.acquired,
        manufacturer=recording.manufacturer,
        model=recording.model,
        device_measurements=recording.measurements,
        statements=recording.statements,
        sensitivity_uv=recording.resolution_uv,
        series_description="ECG imported from HL7 aECG",
        now=now,
    )
    return recording, part10(dataset)
