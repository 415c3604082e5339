"""QIDO-RS (PS3.18 10.6): search for studies, series and instances."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from pydicom.datadict import keyword_for_tag, tag_for_keyword

from server.access import allow
from server.archive import matching
from server.archive import service as archive
from server.archive.matching import Level
from server.archive.readers import request_reader
from server.context import db
from server.dicomweb import attributes
from server.dicomweb.media import DICOM_JSON, negotiate_json
from server.dicomweb.paths import ROLES, base_url, optional_uid
from server.errors import NotFound

MAX_RESULTS = 1000
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_PARAMETERS = "limit, offset, includefield, fuzzymatching"


@dataclass(frozen=True, slots=True)
class _Query:
    keys: dict[str, str]
    chosen: attributes.Selection
    fuzzy: bool
    limit: int
    offset: int
    warnings: tuple[str, ...]


def _keyword(name: str) -> str:
    """The keyword of an attribute given by keyword or tag; dotted paths are returned as given."""
    if _TAG.fullmatch(name):
        keyword = keyword_for_tag(int(name, 16))
        if keyword:
            return keyword
    elif tag_for_keyword(name) is not None or (
        "." in name and all(_keyword(part) for part in name.split("."))
    ):
        return name  # a dotted sequence path is valid but never supported for matching
    raise matching.InvalidQuery(
        f"{name[:64]!r} is neither a DICOM attribute (keyword or tag) nor one of {_PARAMETERS}."
    )


def _number(name: str, value: str, minimum: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value) or int(value) < minimum:
        raise matching.InvalidQuery(f"{name} must be a whole number of at least {minimum}.")
    return int(value)


def _parse(request: web.Request, level: Level, scoped_to: Level | None) -> _Query:
    found: dict[str, str] = {}
    include: set[str] = set()
    include_all = fuzzy = False
    limit, offset = MAX_RESULTS, 0
    ignored: list[str] = []
    warnings: list[str] = []
    supported = matching.matching_keys(level)
    for name, value in request.query.items():
        parameter = name.lower()
        if parameter == "limit":
            limit = _number(name, value, 1)
            if limit > MAX_RESULTS:
                warnings.append(f"limit reduced to {MAX_RESULTS}")
                limit = MAX_RESULTS
        elif parameter == "offset":
            offset = _number(name, value, 0)
        elif parameter == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise matching.InvalidQuery("fuzzymatching must be true or false.")
            fuzzy = value.lower() == "true"
        elif parameter == "includefield":
            for field in (f.strip() for f in value.split(",")):
                if field.lower() == "all":
                    include_all = True
                else:
                    include.add(_keyword(field))
        else:
            keyword = _keyword(name)
            if keyword in found or keyword in ignored:
                raise matching.InvalidQuery(f"{keyword} is given more than once.")
            if keyword in supported:
                found[keyword] = value
            else:
                ignored.append(keyword)
    if ignored:
        warnings.append("not supported as matching keys, ignored: " + ", ".join(ignored))
    chosen = attributes.selection(
        level, scoped_to=scoped_to, include_all=include_all, include=include | set(found)
    )
    return _Query(found, chosen, fuzzy, limit, offset, tuple(warnings))


def _respond(
    request: web.Request,
    query: _Query,
    matches: Sequence[archive.StudyMatch | archive.SeriesMatch | archive.InstanceMatch],
) -> web.Response:
    """DICOM JSON of the matches with the chosen attributes, and any warnings."""
    base = base_url(request)
    chosen = query.chosen.attributes()
    results = [attributes.result_json(m, chosen, base) for m in matches]
    response = web.Response(body=json.dumps(results).encode(), content_type=DICOM_JSON)
    warnings = list(query.warnings)
    if len(results) == MAX_RESULTS and "limit" not in request.query:
        warnings.append(f"only the first {MAX_RESULTS} results; use limit and offset to page")
    if warnings:
        response.headers["Warning"] = f'299 doorstep "{"; ".join(warnings)}"'
    return response


@allow(*ROLES)
async def search_for_studies(request: web.Request) -> web.StreamResponse:
    """GET /dicom-web/studies."""
    negotiate_json(request)
    query = _parse(request, "study", None)
    async with db(request) as session:
        matches = await archive.search_studies(
            session=session,
            reader=request_reader(request),
            keys=query.keys,
            fuzzy=query.fuzzy,
            limit=query.limit,
            offset=query.offset,
        )
    return _respond(request, query, matches)


@allow(*ROLES)
async def search_for_series(request: web.Request) -> web.StreamResponse:
    """GET /dicom-web/series and /dicom-web/studies/{study}/series."""
    negotiate_json(request)
    study_uid = optional_uid(request, "study")
    query = _parse(request, "series", "study" if study_uid else None)
    async with db(request) as session:
        matches = await archive.search_series(
            session=session,
            reader=request_reader(request),
            study_uid=study_uid,
            keys=query.keys,
            fuzzy=query.fuzzy,
            limit=query.limit,
            offset=query.offset,
        )
    if matches is None:
        raise NotFound(f"No study {study_uid} in your organisation.")
    return _respond(request, query, matches)


@allow(*ROLES)
async def search_for_instances(request: web.Request) -> web.StreamResponse:
    """GET /dicom-web/instances, /studies/{study}/instances, .../series/{series}/instances."""
    negotiate_json(request)
    study_uid = optional_uid(request, "study")
    series_uid = optional_uid(request, "series")
    scope: Level | None = "series" if series_uid else "study" if study_uid else None
    query = _parse(request, "instance", scope)
    async with db(request) as session:
        matches = await archive.search_instances(
            session=session,
            reader=request_reader(request),
            study_uid=study_uid,
            series_uid=series_uid,
            keys=query.keys,
            fuzzy=query.fuzzy,
            limit=query.limit,
            offset=query.offset,
        )
    if matches is None:
        raise NotFound(f"No {scope} {series_uid or study_uid} in your organisation.")
    return _respond(request, query, matches)
