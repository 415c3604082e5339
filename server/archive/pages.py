"""GP study browser: the clinic's studies with thumbnails, and one study's series."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dicom_tools.uids import is_valid_uid
from server import keys
from server.access import allow
from server.archive import service as archive
from server.archive.models import Study
from server.archive.readers import request_reader
from server.context import db, principal
from server.dicomweb import urls
from server.errors import NotFound
from server.forms import query_id
from server.identity import Role
from server.reading import pages as reading
from server.templates import render

STUDY_LIMIT = 100
SERIES_LIMIT = 500


@dataclass(frozen=True, slots=True)
class StudyRow:
    """A study as the browser lists it."""

    study_uid: str
    patient_name: str | None
    """As stored (DICOM PN); the template shows it with `person_name`."""
    patient_id: str
    date: str | None
    """As stored (DICOM DA); the template shows it with `dicom_date`."""
    description: str
    modalities: str
    series: int
    instances: int
    thumbnail: str | None


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """A series of the study detail page."""

    series_uid: str
    number: int | None
    modality: str
    description: str
    instances: int
    thumbnail: str | None


def thumbnail_url(study_uid: str, series_uid: str, sop_instance_uid: str) -> str:
    """The WADO-RS thumbnail of an instance."""
    return urls.thumbnail(urls.instance(study_uid, series_uid, sop_instance_uid))


@allow(Role.GP, page=True)
async def study_list(request: web.Request) -> web.StreamResponse:
    """GET /studies: the clinic's studies, newest first."""
    async with db(request) as session:
        matches = await archive.search_studies(
            session=session,
            reader=request_reader(request),
            keys={},
            fuzzy=False,
            limit=STUDY_LIMIT,
            offset=0,
        )
        first = await archive.first_instances(session, study_ids=[m.study.id for m in matches])
    rows = []
    for match in matches:
        study = match.study
        found = first.get(study.id)
        rows.append(
            StudyRow(
                study_uid=study.study_uid,
                patient_name=study.patient_name,
                patient_id=study.patient_id or "—",
                date=study.study_date,
                description=study.study_description or "",
                modalities=", ".join(match.modalities) or "—",
                series=match.number_of_series,
                instances=match.number_of_instances,
                thumbnail=thumbnail_url(study.study_uid, *found) if found else None,
            )
        )
    return render(request, "studies/list.html", studies=rows, limit=STUDY_LIMIT)


def _not_found(study_uid: str) -> NotFound:
    return NotFound(f"No study {study_uid[:64]} in your organisation.")


@allow(Role.GP, page=True)
async def study_detail(request: web.Request) -> web.StreamResponse:
    """GET /studies/{study}: one of the clinic's studies and its series (404 for others)."""
    study_uid = request.match_info["study"]
    if not is_valid_uid(study_uid):
        raise _not_found(study_uid)
    async with db(request) as session:
        found_series = await archive.study_series(
            session=session, reader=request_reader(request), study_uid=study_uid, limit=SERIES_LIMIT
        )
        if found_series is None:
            raise _not_found(study_uid)
        readings = await reading.study_readings(
            session=session, caller=principal(request), study_uid=study_uid
        )
        ask = await reading.ask_form(
            session=session,
            settings=request.app[keys.SETTINGS],
            study_uid=study_uid,
            modalities=[m.series.modality for m in found_series.series if m.series.modality],
        )
    study: Study = found_series.study
    series = []
    for match in found_series.series:
        found = found_series.first.get(match.series.id)
        series.append(
            SeriesRow(
                series_uid=match.series.series_uid,
                number=match.series.series_number,
                modality=match.series.modality or "—",
                description=match.series.series_description or "",
                instances=match.number_of_instances,
                thumbnail=thumbnail_url(study_uid, *found) if found else None,
            )
        )
    return render(
        request,
        "studies/detail.html",
        study=study,
        series=series,
        instances=sum(s.instances for s in series),
        readings=readings,
        ask=ask,
        asked=next((r for r in readings if r.id == query_id(request, "asked")), None),
        cancelled=query_id(request, "cancelled"),
    )
