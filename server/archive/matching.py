"""Attribute matching of PS3.4 C.2.2.2 as SQL conditions on the archive index.

Supported: single value matching, wildcards ``*`` and ``?`` (person names
case-insensitively), UID list matching, date and time range matching, and
value lists for code strings. An empty value is universal matching. Wildcards
become ``GLOB`` on SQLite and ``LIKE`` on PostgreSQL (both case-sensitive, on
binary collation), preceded by a range on the literal prefix so that a btree
index answers ``Smith*`` on either backend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from dicom_tools.uids import is_valid_uid
from server.archive.models import Instance, Series, Study, name_key
from server.errors import DomainError

Level = Literal["study", "series", "instance"]
Kind = Literal["uid", "text", "name", "date", "time", "integer", "code", "modalities"]

_CODE = re.compile(r"[A-Z0-9 _]{1,16}")
_TIME = re.compile(r"([0-9]{2})([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?")
_TIME_CEILING = "5959.999999"
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


class InvalidQuery(DomainError):
    """A query parameter that cannot be used for matching."""

    status = 400
    code = "invalid_query"


@dataclass(frozen=True, slots=True)
class _Key:
    column: InstrumentedAttribute[Any]
    kind: Kind


_STUDY_KEYS = {
    "StudyInstanceUID": _Key(Study.study_uid, "uid"),
    "PatientID": _Key(Study.patient_id, "text"),
    "PatientName": _Key(Study.patient_name_key, "name"),
    "PatientBirthDate": _Key(Study.patient_birth_date, "date"),
    "PatientSex": _Key(Study.patient_sex, "code"),
    "StudyDate": _Key(Study.study_date, "date"),
    "StudyTime": _Key(Study.study_time, "time"),
    "AccessionNumber": _Key(Study.accession_number, "text"),
    "StudyID": _Key(Study.study_id, "text"),
    "ReferringPhysicianName": _Key(Study.referring_physician_key, "name"),
    "ModalitiesInStudy": _Key(Study.id, "modalities"),
}
_SERIES_KEYS = {
    "SeriesInstanceUID": _Key(Series.series_uid, "uid"),
    "Modality": _Key(Series.modality, "code"),
    "SeriesNumber": _Key(Series.series_number, "integer"),
}
_INSTANCE_KEYS = {
    "SOPInstanceUID": _Key(Instance.sop_instance_uid, "uid"),
    "SOPClassUID": _Key(Instance.sop_class_uid, "uid"),
    "InstanceNumber": _Key(Instance.instance_number, "integer"),
}
_KEYS: dict[Level, dict[str, _Key]] = {
    "study": _STUDY_KEYS,
    "series": _SERIES_KEYS | _STUDY_KEYS,
    "instance": _INSTANCE_KEYS | _SERIES_KEYS | _STUDY_KEYS,
}


def matching_keys(level: Level) -> frozenset[str]:
    """Keywords of the attributes that can be matched at this query level."""
    return frozenset(_KEYS[level])


def conditions(
    level: Level, keys: Mapping[str, str], *, fuzzy: bool, dialect: str
) -> list[ColumnElement[bool]]:
    """SQL conditions for matching keys (keyword to value); raise InvalidQuery for bad values."""
    found = []
    for keyword, value in keys.items():
        key = _KEYS[level].get(keyword)
        if key is None:
            raise InvalidQuery(f"{keyword} is not a matching key for a {level} query.")
        if value and value != "*":
            found.append(_condition(keyword, key, value, fuzzy, dialect))
    return found


def _condition(
    keyword: str, key: _Key, value: str, fuzzy: bool, dialect: str
) -> ColumnElement[bool]:
    column = key.column
    if key.kind == "uid":
        return column.in_(_uids(keyword, value))
    if key.kind == "text":
        return _wildcard(column, value, dialect)
    if key.kind == "name":
        folded = name_key(value) or ""
        return _wildcard(column, f"*{folded}*" if fuzzy else folded, dialect)
    if key.kind == "date":
        return _range(column, keyword, value, _date, _date)
    if key.kind == "time":
        return _range(column, keyword, value, _time, _time_ceiling)
    if key.kind == "integer":
        return column == _integer(keyword, value)
    codes = _codes(keyword, value)
    if key.kind == "code":
        return column.in_(codes)
    # An alias, so that a series or instance query (already joined to Series) still asks
    # about every series of the study, not only the row it is matching.
    other = aliased(Series)
    return exists(select(other.id).where(other.study_id == column, other.modality.in_(codes)))


def _uids(keyword: str, value: str) -> list[str]:
    uids = [uid.strip() for uid in re.split(r"[,\\]", value)]
    for uid in uids:
        if not is_valid_uid(uid):
            raise InvalidQuery(
                f"{keyword} must be UIDs (digits and dots) separated by commas; got {uid[:70]!r}."
            )
    return uids


def _codes(keyword: str, value: str) -> list[str]:
    codes = [code.strip() for code in re.split(r"[,\\]", value)]
    for code in codes:
        if not _CODE.fullmatch(code):
            raise InvalidQuery(f"{keyword} values are code strings like CT; got {code[:20]!r}.")
    return codes


def _integer(keyword: str, value: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", value.strip()):
        raise InvalidQuery(f"{keyword} must be an integer; got {value[:20]!r}.")
    return int(value)


def _wildcard(
    column: InstrumentedAttribute[Any], pattern: str, dialect: str
) -> ColumnElement[bool]:
    """Single value or wildcard matching; exact comparison when there is no wildcard."""
    if "*" not in pattern and "?" not in pattern:
        exact: ColumnElement[bool] = column == pattern
        return exact
    prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
    condition: ColumnElement[bool]
    if dialect == "sqlite":
        condition = column.op("GLOB")(pattern.replace("[", "[[]"))
    else:
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        condition = column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")
    if not prefix:
        return condition
    upper = _successor(prefix)
    lower = column >= prefix
    return and_(lower, column < upper, condition) if upper else and_(lower, condition)


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with prefix (code point order)."""
    code = ord(prefix[-1]) + 1
    if code in _SURROGATES:
        code = _SURROGATES.stop
    return prefix[:-1] + chr(code) if code <= _MAX_CODE_POINT else None


def _range(
    column: InstrumentedAttribute[Any],
    keyword: str,
    value: str,
    low: Any,
    high: Any,
) -> ColumnElement[bool]:
    if "-" not in value:
        return and_(column >= low(keyword, value), column <= high(keyword, value))
    start, _, end = value.partition("-")
    if not start and not end:
        raise InvalidQuery(f"{keyword} range {value!r} has neither start nor end.")
    bounds = []
    if start:
        bounds.append(column >= low(keyword, start))
    if end:
        bounds.append(column <= high(keyword, end))
    return and_(*bounds)


def _date(keyword: str, value: str) -> str:
    if is_date(value):
        return value
    raise InvalidQuery(
        f"{keyword} must be a date YYYYMMDD or a range like 20200101-20201231; got {value[:30]!r}."
    )


def is_date(value: str) -> bool:
    """True for a valid DA value YYYYMMDD."""
    if not re.fullmatch(r"[0-9]{8}", value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def is_time(value: str) -> bool:
    """True for a TM value HH[MM[SS[.F]]] as the archive indexes it."""
    return _TIME.fullmatch(value) is not None and int(value[:2]) <= 23


def _time(keyword: str, value: str) -> str:
    if not is_time(value):
        raise InvalidQuery(
            f"{keyword} must be a time HHMMSS (minutes and seconds optional) or a range; "
            f"got {value[:30]!r}."
        )
    return value


def _time_ceiling(keyword: str, value: str) -> str:
    """The latest stored time that the given, possibly shortened, time still matches."""
    checked = _time(keyword, value)
    if "." in checked:
        return checked + "9" * (13 - len(checked))
    return checked + _TIME_CEILING[len(checked) - 2 :]
