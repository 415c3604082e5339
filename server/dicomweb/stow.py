"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related application/dicom parts."""

from __future__ import annotations

import json

from aiohttp import web

from server import keys
from server.access import allow
from server.context import principal, recorder
from server.dicomweb import attributes, multipart
from server.dicomweb.media import DICOM_JSON
from server.dicomweb.paths import ROLES, base_url, optional_uid
from server.errors import MalformedInput


@allow(*ROLES)
async def store_instances(request: web.Request) -> web.StreamResponse:
    """POST /dicom-web/studies[/{study}]: 200 all stored, 202 some failed, 409 none stored."""
    settings, archive = request.app[keys.SETTINGS], request.app[keys.ARCHIVE]
    study_uid = optional_uid(request, "study")
    boundary = multipart.stow_boundary(request, max_total_bytes=settings.max_stow_bytes)
    caller = principal(request)
    async with archive.upload_slot(caller.user_id):
        parts = multipart.dicom_parts(
            request.content,
            boundary,
            max_part_bytes=settings.max_instance_bytes,
            max_total_bytes=settings.max_stow_bytes,
            max_parts=settings.max_stow_parts,
            open_spool=archive.storage.spool,
        )
        results = await archive.store(
            audit=recorder(request),
            org_id=caller.org_id,
            items=parts,
            source="stow-rs",
            study_uid=study_uid,
        )
    if not results:
        raise MalformedInput("The request holds no application/dicom parts.")
    stored = sum(1 for r in results if r.ok)
    status = 200 if stored == len(results) else 202 if stored else 409
    body = attributes.stow_response(results, base_url(request), study_uid)
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=DICOM_JSON)
