"""ECG API: GET /api/v1/ecg/{sop_instance_uid} (JSON) and its .svg (ECG paper)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from typing import Protocol

from aiohttp import hdrs, web

from dicom_tools.uids import is_valid_uid
from server import keys
from server.archive import service as archive
from server.archive.readers import request_reader
from server.archive.storage import BlobStorage
from server.context import db
from server.dicomweb import conditional
from server.ecg import service
from server.ecg.schemas import EcgOut, SvgQuery
from server.endpoint import api, read_query
from server.errors import InvalidInput, MalformedInput


@api(
    summary="A calibrated ECG: leads in whole microvolts, automatic and device measurements "
    "(strong ETag; If-None-Match answers 304)",
    tag="ecg",
    response=EcgOut,
    roles=service.READERS,
)
async def get_ecg(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/ecg/{sop_instance_uid}."""
    _, body = await _located(request, "ecg", service.ecg_json)
    return _respond(request, body, "application/json")


@api(
    summary="The ECG on paper, in millimetres (grid, calibration pulses, leads, measurements)",
    tag="ecg",
    query=SvgQuery,
    response=str,
    media_type="image/svg+xml",
    roles=service.READERS,
)
async def get_ecg_svg(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/ecg/{sop_instance_uid}.svg?layout=3x4|12x1&speed=25|50&gain=5|10|20."""
    try:
        query = read_query(request, SvgQuery)
    except InvalidInput as error:
        raise MalformedInput(error.message, details=error.details) from None
    paper = partial(service.ecg_svg, layout=query.layout, speed=query.speed, gain=query.gain)
    instance, body = await _located(request, "ecg.svg", paper)
    response = _respond(request, body, "image/svg+xml")
    filename = f"ecg-{instance.sop_instance_uid}-{query.layout}.svg"
    response.headers[hdrs.CONTENT_DISPOSITION] = f'inline; filename="{filename}"'
    return response


class _Answer(Protocol):
    def __call__(
        self, *, storage: BlobStorage, cache: service.EcgCache, instance: archive.StoredInstance
    ) -> Awaitable[service.Body]: ...


async def _located(
    request: web.Request, purpose: str, answer: _Answer
) -> tuple[archive.StoredInstance, service.Body]:
    """The instance (scoped, its read audited) and the body answer makes of it.

    The answer is started as soon as the instance is found, so that reading the file
    overlaps the end of the transaction (its commit, then the audit of the read); it is
    returned only once the transaction has ended as before, and a transaction that
    fails cancels it: nothing is sent.
    """
    uid = request.match_info["sop_instance_uid"]
    if not is_valid_uid(uid):
        raise MalformedInput(f"The SOP Instance UID must be digits and dots: {uid[:70]!r}.")
    started: asyncio.Future[service.Body] | None = None
    try:
        async with db(request) as session:
            instance = await service.locate(
                session=session,
                reader=request_reader(request),
                sop_instance_uid=uid,
                purpose=purpose,
            )
            started = asyncio.ensure_future(
                answer(
                    storage=request.app[keys.ARCHIVE].storage,
                    cache=request.app[keys.ECG_CACHE],
                    instance=instance,
                )
            )
    except BaseException:
        if started is not None:
            started.cancel()
            started.add_done_callback(_retrieved)
        raise
    return instance, await started


def _retrieved(done: asyncio.Future[service.Body]) -> None:
    """Mark an abandoned answer's outcome as seen (its failure is not logged as lost)."""
    if not done.cancelled():
        done.exception()


def _respond(request: web.Request, body: service.Body, media_type: str) -> web.Response:
    """The body, or 304 when the client's If-None-Match has its ETag (or is ``*``).

    Revalidated on every use (``no-cache``), so that each read reaches the server and is
    audited; the validators are WADO-RS's (``dicomweb.conditional``).
    """
    headers = conditional.validators(body.tag, conditional.REVALIDATE)
    if conditional.not_modified(request, body.tag, found=True):
        return conditional.not_modified_response(headers)
    content_type = f"{media_type}; charset=utf-8"
    return web.Response(body=body.content, headers={**headers, hdrs.CONTENT_TYPE: content_type})
