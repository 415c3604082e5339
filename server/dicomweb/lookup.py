"""Find the stored instances a DICOMweb path names, scoped and audited."""

from __future__ import annotations

from aiohttp import web

from server.archive import service as archive
from server.archive.readers import request_reader
from server.context import db
from server.dicomweb.paths import optional_uid, path_uid
from server.errors import NotFound


async def locate(request: web.Request, purpose: str) -> list[archive.StoredInstance]:
    """The visible instances the request path names; 404 (audited) when there are none."""
    study_uid = path_uid(request, "study")
    series_uid = optional_uid(request, "series")
    sop_instance_uid = optional_uid(request, "instance")
    async with db(request) as session:
        found = await archive.locate_instances(
            session=session,
            reader=request_reader(request),
            study_uid=study_uid,
            series_uid=series_uid,
            sop_instance_uid=sop_instance_uid,
            purpose=purpose,
        )
    if not found:
        level, uid = (
            ("instance", sop_instance_uid)
            if sop_instance_uid
            else ("series", series_uid)
            if series_uid
            else ("study", study_uid)
        )
        raise NotFound(f"No {level} {uid} in your organisation.")
    return found
