"""DICOM JSON (PS3.18 F) of QIDO-RS results and of the STOW-RS response."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from dicom_tools.status import store_failure_status
from server.archive.matching import Level
from server.archive.service import InstanceMatch, SeriesMatch, StoreResult, StudyMatch
from server.dicomweb import urls

Json = dict[str, Any]


def element(vr: str, *values: Any) -> Json:
    """One DICOM JSON attribute; no values (or only empty ones) gives an attribute without Value."""
    if len(values) == 1:
        return _element(vr, values[0])
    present = [v for v in values if v is not None and v != ""]
    if not present:
        return {"vr": vr}
    if vr == "PN":
        present = [_person_name(name) for v in present for name in str(v).split("\\")]
    return {"vr": vr, "Value": present}


def _element(vr: str, value: Any) -> Json:
    """element() of one value, the case of nearly every attribute of a QIDO result."""
    if value is None or value == "":
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [_person_name(name) for name in str(value).split("\\")]}
    return {"vr": vr, "Value": [value]}


def _person_name(value: str) -> Json:
    groups = value.split("=")
    names = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False))
    return {key: name for key, name in names.items() if name}


@dataclass(frozen=True, slots=True)
class _Attribute:
    """A QIDO-RS return attribute; its tag and VR are the data dictionary's."""

    keyword: str
    value: Callable[[Any, str], Any]
    default: bool = True
    aggregate: bool = False
    tag: str = field(init=False)
    vr: str = field(init=False)

    def __post_init__(self) -> None:
        tag = tag_for_keyword(self.keyword)
        if tag is None:
            raise ValueError(f"{self.keyword} is not a DICOM keyword")
        object.__setattr__(self, "tag", f"{tag:08X}")
        object.__setattr__(self, "vr", dictionary_VR(tag))


_STUDY = [
    _Attribute("StudyDate", lambda m, _: m.study.study_date),
    _Attribute("StudyTime", lambda m, _: m.study.study_time),
    _Attribute("AccessionNumber", lambda m, _: m.study.accession_number),
    _Attribute("InstanceAvailability", lambda m, _: "ONLINE"),
    _Attribute("ModalitiesInStudy", lambda m, _: m.modalities, aggregate=True),
    _Attribute("SOPClassesInStudy", lambda m, _: m.sop_classes, False, aggregate=True),
    _Attribute("ReferringPhysicianName", lambda m, _: m.study.referring_physician_name),
    _Attribute("StudyDescription", lambda m, _: m.study.study_description, False),
    _Attribute("RetrieveURL", lambda m, base: _study_url(m, base)),
    _Attribute("PatientName", lambda m, _: m.study.patient_name),
    _Attribute("PatientID", lambda m, _: m.study.patient_id),
    _Attribute("PatientBirthDate", lambda m, _: m.study.patient_birth_date),
    _Attribute("PatientSex", lambda m, _: m.study.patient_sex),
    _Attribute("StudyInstanceUID", lambda m, _: m.study.study_uid),
    _Attribute("StudyID", lambda m, _: m.study.study_id),
    _Attribute("NumberOfStudyRelatedSeries", lambda m, _: m.number_of_series, aggregate=True),
    _Attribute("NumberOfStudyRelatedInstances", lambda m, _: m.number_of_instances, aggregate=True),
]
_SERIES = [
    _Attribute("InstanceAvailability", lambda m, _: "ONLINE"),
    _Attribute("Modality", lambda m, _: m.series.modality),
    _Attribute("SeriesDescription", lambda m, _: m.series.series_description),
    _Attribute("RetrieveURL", lambda m, base: _series_url(m, base)),
    _Attribute("BodyPartExamined", lambda m, _: m.series.body_part, False),
    _Attribute("StudyInstanceUID", lambda m, _: m.study.study_uid),
    _Attribute("SeriesInstanceUID", lambda m, _: m.series.series_uid),
    _Attribute("SeriesNumber", lambda m, _: m.series.series_number),
    _Attribute(
        "NumberOfSeriesRelatedInstances", lambda m, _: m.number_of_instances, aggregate=True
    ),
]
_INSTANCE = [
    _Attribute("SOPClassUID", lambda m, _: m.instance.sop_class_uid),
    _Attribute("SOPInstanceUID", lambda m, _: m.instance.sop_instance_uid),
    _Attribute("InstanceAvailability", lambda m, _: "ONLINE"),
    _Attribute("RetrieveURL", lambda m, base: _instance_url(m, base)),
    _Attribute("AvailableTransferSyntaxUID", lambda m, _: m.instance.transfer_syntax_uid, False),
    _Attribute("StudyInstanceUID", lambda m, _: m.study.study_uid),
    _Attribute("SeriesInstanceUID", lambda m, _: m.series.series_uid),
    _Attribute("InstanceNumber", lambda m, _: m.instance.instance_number),
    _Attribute("NumberOfFrames", lambda m, _: m.instance.number_of_frames),
    _Attribute("Rows", lambda m, _: m.instance.rows),
    _Attribute("Columns", lambda m, _: m.instance.columns),
    _Attribute("BitsAllocated", lambda m, _: m.instance.bits_allocated),
]
_LEVELS: dict[Level, list[_Attribute]] = {
    "study": _STUDY,
    "series": _SERIES,
    "instance": _INSTANCE,
}
_ABOVE: dict[Level, tuple[Level, ...]] = {
    "study": (),
    "series": ("study",),
    "instance": ("study", "series"),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which attributes a QIDO response carries: defaults of some levels plus includefield."""

    level: Level
    defaults: tuple[Level, ...]
    include_all: bool
    include: frozenset[str]

    def attributes(self) -> list[_Attribute]:
        """The attributes returned, in tag order; aggregates only of the queried level.

        Levels are walked from the top, so where two levels share a tag (RetrieveURL)
        the queried level's attribute wins.
        """
        by_tag = {
            a.tag: a
            for level in (*_ABOVE[self.level], self.level)
            for a in _LEVELS[level]
            if (level == self.level or not a.aggregate)
            and (
                (a.default and level in self.defaults)
                or self.include_all
                or a.keyword in self.include
            )
        }
        return [by_tag[tag] for tag in sorted(by_tag)]


def selection(
    level: Level, *, scoped_to: Level | None, include_all: bool, include: Iterable[str]
) -> Selection:
    """Defaults of the level and of the levels above it that the request URL does not fix."""
    above = _ABOVE[level]
    unscoped = above if scoped_to is None else above[above.index(scoped_to) + 1 :]
    return Selection(level, (*unscoped, level), include_all, frozenset(include))


def result_json(
    match: StudyMatch | SeriesMatch | InstanceMatch, chosen: Sequence[_Attribute], base: str
) -> Json:
    """One QIDO result with the chosen attributes (Selection.attributes, computed once)."""
    out: Json = {}
    for attribute in chosen:
        value = attribute.value(match, base)
        vr = attribute.vr
        out[attribute.tag] = element(vr, *value) if type(value) is tuple else _element(vr, value)
    return out


def _study_url(match: StudyMatch | SeriesMatch | InstanceMatch, base: str) -> str:
    return urls.study(match.study.study_uid, root=base)


def _series_url(match: SeriesMatch | InstanceMatch, base: str) -> str:
    return urls.series(match.study.study_uid, match.series.series_uid, root=base)


def _instance_url(match: InstanceMatch, base: str) -> str:
    uids = (match.study.study_uid, match.series.series_uid, match.instance.sop_instance_uid)
    return urls.instance(*uids, root=base)


def stow_response(results: Sequence[StoreResult], base: str, study_uid: str | None) -> Json:
    """The Store Instances Response Module: referenced and failed SOP sequences."""
    referenced = []
    failed = []
    for result in results:
        item: Json = {
            "00081150": element("UI", result.sop_class_uid),
            "00081155": element("UI", result.sop_instance_uid),
        }
        if result.ok:
            uids = (result.study_uid, result.series_uid, result.sop_instance_uid)
            item["00081190"] = element("UR", urls.instance(*map(str, uids), root=base))
            referenced.append(item)
        else:
            item["00081197"] = element("US", int(store_failure_status(result.reason)))
            item["00000902"] = element("LO", f"{result.reason}: {result.message}")
            failed.append(item)
    out: Json = {}
    if study_uid is not None:
        out["00081190"] = element("UR", urls.study(study_uid, root=base))
    if failed:
        out["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        out["00081199"] = {"vr": "SQ", "Value": referenced}
    return out
