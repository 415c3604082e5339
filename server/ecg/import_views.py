"""`POST /api/v1/ecg/import`: an HL7 aECG document in, a 12-Lead ECG instance archived."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from server import keys
from server.context import principal, recorder
from server.dicomweb.paths import ROLES
from server.ecg import importing
from server.endpoint import api, json_response
from server.errors import MalformedInput, PayloadTooLarge, UnsupportedMediaType

_CHUNK = 256 * 1024


class EcgImported(BaseModel):
    """The archived 12-lead ECG instance converted from the aECG document."""

    model_config = ConfigDict(extra="forbid")

    study_uid: str
    sop_instance_uid: str


async def read_xml(request: web.Request) -> bytes:
    """The XML body of the request: 415 unless application/xml or text/xml, 413 past the limit."""
    if request.content_type not in importing.XML_TYPES:
        raise UnsupportedMediaType("Send the HL7 aECG document as application/xml.")
    limit = importing.MAX_AECG_BYTES
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"The document is larger than the limit of {limit} bytes.")
    data = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"The document is larger than the limit of {limit} bytes.")
    if not data:
        raise MalformedInput("The request holds no aECG document.")
    return bytes(data)


@api(
    summary="Import an HL7 aECG document (application/xml) as a DICOM 12-lead ECG",
    tag="ecg",
    response=EcgImported,
    status=201,
    errors=[429],
    roles=ROLES,
    raw_body=sorted(importing.XML_TYPES),
)
async def import_ecg(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/ecg/import: 201 with the new study and instance; 422 with a reason."""
    caller = principal(request)
    store = request.app[keys.ARCHIVE]
    async with store.upload_slot(caller.user_id):
        data = await read_xml(request)
        imported = await importing.import_aecg(
            store=store, audit=recorder(request), caller=caller, data=data
        )
    return json_response(
        EcgImported(study_uid=imported.study_uid, sop_instance_uid=imported.sop_instance_uid),
        status=201,
    )
