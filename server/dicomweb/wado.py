"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data of visible studies."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, TypeVar

from aiohttp import hdrs, web
from pydicom.uid import UID

from server import keys
from server.access import allow
from server.archive import service as archive
from server.archive.storage import BlobStorage
from server.dicomweb import lookup, metadata, pixels
from server.dicomweb.media import (
    DICOM,
    DICOM_JSON,
    EXPLICIT_VR_LITTLE_ENDIAN,
    OCTET_STREAM,
    negotiate_frames,
    negotiate_instances,
    negotiate_json,
)
from server.dicomweb.multipart import MultipartStream
from server.dicomweb.paths import ROLES, base_url
from server.errors import MalformedInput, NotFound

T = TypeVar("T")
READ_CHUNK = 1024 * 1024
MAX_FRAMES_PER_REQUEST = 10_000
_FRAME_LIST = re.compile(r"[0-9]{1,9}(?:,[0-9]{1,9})*")


async def _blob(storage: BlobStorage, sha256: str) -> AsyncIterator[bytes]:
    source = await asyncio.to_thread(storage.open, sha256)
    try:
        while chunk := await asyncio.to_thread(source.read, READ_CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(source.close)


def _with_blob(storage: BlobStorage, sha256: str, read: Callable[[BinaryIO], T]) -> T:
    with storage.open(sha256) as source:
        return read(source)


@allow(*ROLES)
async def retrieve_instances(request: web.Request) -> web.StreamResponse:
    """GET /dicom-web/studies/{study}[/series/{series}[/instances/{instance}]]."""
    found = await lookup.locate(request, "instances")
    storage = request.app[keys.BLOB_STORAGE]
    single = negotiate_instances(
        request,
        {item.transfer_syntax_uid for item in found},
        single="instance" in request.match_info,
    )
    if single:
        item = found[0]
        response = web.StreamResponse(
            headers={hdrs.CONTENT_TYPE: f"{DICOM}; transfer-syntax={item.transfer_syntax_uid}"}
        )
        response.content_length = item.size
        await response.prepare(request)
        async for chunk in _blob(storage, item.sha256):
            await response.write(chunk)
        await response.write_eof()
        return response
    stream = MultipartStream(request, DICOM)
    await stream.start()
    for item in found:
        await stream.part(
            f"{DICOM}; transfer-syntax={item.transfer_syntax_uid}", _blob(storage, item.sha256)
        )
    return await stream.finish()


@allow(*ROLES)
async def retrieve_metadata(request: web.Request) -> web.StreamResponse:
    """GET .../metadata of a study, series or instance: DICOM JSON with BulkDataURIs."""
    negotiate_json(request)
    found = await lookup.locate(request, "metadata")
    documents = await asyncio.to_thread(
        _metadata, request.app[keys.BLOB_STORAGE], found, base_url(request)
    )
    return web.Response(body=json.dumps(documents).encode(), content_type=DICOM_JSON)


def _metadata(
    storage: BlobStorage, found: list[archive.StoredInstance], base: str
) -> list[dict[str, Any]]:
    documents = []
    for item in found:
        with storage.open(item.sha256) as source:
            documents.append(
                metadata.instance_metadata(source, f"{_instance_url(base, item)}/bulkdata/")
            )
    return documents


def _instance_url(base: str, item: archive.StoredInstance) -> str:
    return (
        f"{base}/studies/{item.study_uid}/series/{item.series_uid}"
        f"/instances/{item.sop_instance_uid}"
    )


def _frame_numbers(text: str) -> list[int]:
    if not _FRAME_LIST.fullmatch(text):
        raise MalformedInput(f"Frames are numbers from 1 separated by commas, not {text[:40]!r}.")
    numbers = [int(n) for n in text.split(",")]
    if len(numbers) > MAX_FRAMES_PER_REQUEST:
        raise MalformedInput(f"Ask for at most {MAX_FRAMES_PER_REQUEST} frames at once.")
    return numbers


def _part_type(media_type: str, transfer_syntax_uid: str) -> str:
    if media_type == OCTET_STREAM and not UID(transfer_syntax_uid).is_encapsulated:
        transfer_syntax_uid = EXPLICIT_VR_LITTLE_ENDIAN
    return f"{media_type}; transfer-syntax={transfer_syntax_uid}"


async def _send_parts(
    request: web.Request, media_type: str, content_type: str, parts: list[bytes]
) -> web.StreamResponse:
    stream = MultipartStream(request, media_type)
    await stream.start()
    for part in parts:
        await stream.part(content_type, part)
    return await stream.finish()


@allow(*ROLES)
async def retrieve_frames(request: web.Request) -> web.StreamResponse:
    """GET .../instances/{instance}/frames/{frames}: frames as stored (native little endian)."""
    numbers = _frame_numbers(request.match_info["frames"])
    item = (await lookup.locate(request, "frames"))[0]
    media_type = negotiate_frames(request, item.transfer_syntax_uid)
    limit = request.app[keys.SETTINGS].max_inflated_bytes
    frames = await asyncio.to_thread(
        _with_blob,
        request.app[keys.BLOB_STORAGE],
        item.sha256,
        lambda source: pixels.read_frames(source, numbers, max_inflated_bytes=limit),
    )
    content_type = _part_type(media_type, item.transfer_syntax_uid)
    return await _send_parts(request, media_type, content_type, frames)


@allow(*ROLES)
async def retrieve_bulk_data(request: web.Request) -> web.StreamResponse:
    """GET .../instances/{instance}/bulkdata/{path}: one BulkDataURI of the metadata."""
    path = request.match_info["path"]
    if not pixels.BULK_DATA_PATH.fullmatch(path):
        raise NotFound(f"No bulk data at {path[:80]!r}.")
    item = (await lookup.locate(request, "bulkdata"))[0]
    encapsulated = path == "7FE00010" and UID(item.transfer_syntax_uid).is_encapsulated
    syntax = item.transfer_syntax_uid if encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
    media_type = negotiate_frames(request, syntax)
    limit = request.app[keys.SETTINGS].max_inflated_bytes
    parts = await asyncio.to_thread(
        _with_blob,
        request.app[keys.BLOB_STORAGE],
        item.sha256,
        lambda source: pixels.read_bulk_data(source, path, max_inflated_bytes=limit),
    )
    return await _send_parts(request, media_type, _part_type(media_type, syntax), parts)
