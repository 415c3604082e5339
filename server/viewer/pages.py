"""The viewer page: series thumbnails, then the image viewport or, for an ECG series, its paper.

The page carries what the browser needs as data- attributes (the DICOMweb URLs of the
chosen series); the pixels come from WADO-RS (metadata and frames), scoped and audited
by the archive like any other retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dicom_tools.ecg import ECG_SOP_CLASSES
from dicom_tools.uids import is_valid_uid
from server import keys
from server.access import allow
from server.archive import service as archive
from server.archive.readers import request_reader
from server.context import db, principal
from server.dicomweb import urls
from server.errors import NotFound
from server.forms import query_id
from server.identity import Role
from server.middleware import allow_same_origin_framing
from server.reading import pages as reading
from server.templates import render

SERIES_LIMIT = 500
ECG_API = "/api/v1/ecg"


@dataclass(frozen=True, slots=True)
class ViewerSeries:
    """A series as the viewer's thumbnail strip shows it."""

    series_uid: str
    number: int | None
    modality: str
    description: str
    instances: int
    thumbnail: str | None
    ecg_sop_instance_uid: str | None
    """The first ECG waveform of the series; the series is shown as an ECG when set."""
    url: str
    """The series' DICOMweb URL (metadata and frames hang from it)."""

    @property
    def label(self) -> str:
        """Series number (or UID) and modality, for alt texts and headings."""
        number = self.number if self.number is not None else self.series_uid
        return f"Series {number} ({self.modality})"


def _not_found(study_uid: str) -> NotFound:
    return NotFound(f"No study {study_uid[:64]} in your organisation.")


@allow(Role.GP, Role.SPECIALIST, page=True)
async def study_viewer(request: web.Request) -> web.StreamResponse:
    """GET /studies/{study}/view[?series=][&call=]: a study of the clinic, or one asked to be read.

    With `?call=<consult id>` the page is the shared viewer of that consult's call: the call
    page of the same origin frames it (only this page, only then, may be framed), and the
    viewer follows or leads the others' view through the call page (docs/consults.md).
    """
    study_uid = request.match_info["study"]
    if not is_valid_uid(study_uid):
        raise _not_found(study_uid)
    wanted = request.query.get("series")
    request_id = query_id(request, "request")
    call_id = query_id(request, "call")
    reader = request_reader(request)
    async with db(request) as session:
        found_series = await archive.study_series(
            session=session, reader=reader, study_uid=study_uid, limit=SERIES_LIMIT
        )
        if found_series is None:
            raise _not_found(study_uid)
        ecgs = await archive.search_instances(
            session=session,
            reader=reader,
            study_uid=study_uid,
            series_uid=None,
            keys={"SOPClassUID": ",".join(ECG_SOP_CLASSES)},
            fuzzy=False,
            limit=SERIES_LIMIT,
            offset=0,
        )
        panel = (
            await reading.report_panel(
                session=session,
                caller=principal(request),
                request_id=request_id,
                study_uid=study_uid,
            )
            if request_id is not None
            else None
        )
        caller = principal(request)
        ask = (
            await reading.ask_form(
                session=session,
                settings=request.app[keys.SETTINGS],
                study_uid=study_uid,
                modalities=[m.series.modality for m in found_series.series if m.series.modality],
            )
            if caller.role is Role.GP
            else None
        )
    ecg_of: dict[str, str] = {}
    for found_ecg in ecgs or []:
        ecg_of.setdefault(found_ecg.series.series_uid, found_ecg.instance.sop_instance_uid)
    series = []
    for match in found_series.series:
        uid = match.series.series_uid
        found = found_series.first.get(match.series.id)
        ecg = ecg_of.get(uid)
        series.append(
            ViewerSeries(
                series_uid=uid,
                number=match.series.series_number,
                modality=match.series.modality or "—",
                description=match.series.series_description or "",
                instances=match.number_of_instances,
                thumbnail=(
                    urls.thumbnail(urls.instance(study_uid, *found)) if found and not ecg else None
                ),
                ecg_sop_instance_uid=ecg,
                url=urls.series(study_uid, uid),
            )
        )
    chosen = _chosen(series, wanted, study_uid)
    keep = f"&request={panel.id}" if panel else ""
    if call_id is not None:
        keep += f"&call={call_id}"
    response = render(
        request,
        "viewer/view.html",
        study=found_series.study,
        series=series,
        chosen=chosen,
        ecg_url=f"{ECG_API}/{chosen.ecg_sop_instance_uid}" if chosen.ecg_sop_instance_uid else None,
        panel=panel,
        ask=ask,
        keep=keep,
        call_id=call_id,
    )
    if call_id is not None:
        allow_same_origin_framing(response)
    return response


def _chosen(series: list[ViewerSeries], wanted: str | None, study_uid: str) -> ViewerSeries:
    """The series asked for, else the first image series, else the first; 404 for another."""
    if wanted is not None:
        for item in series:
            if item.series_uid == wanted:
                return item
        raise NotFound(f"No series {wanted[:64]} in study {study_uid[:64]}.")
    return next((s for s in series if s.ecg_sop_instance_uid is None), series[0])
