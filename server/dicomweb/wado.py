"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data of visible studies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, TypeVar

from aiohttp import hdrs, web
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicom_tools import bulkdata, dicomjson, frames, transcoding
from server import keys
from server.access import allow
from server.archive import service as archive
from server.archive.storage import BlobStorage
from server.dicomweb import conditional, lookup, urls
from server.dicomweb.media import (
    DICOM,
    DICOM_JSON,
    OCTET_STREAM,
    InstanceMedia,
    NotAcceptable,
    negotiate_frames,
    negotiate_instances,
    negotiate_json,
)
from server.dicomweb.multipart import MultipartStream
from server.dicomweb.paths import ROLES, base_url, path_frames
from server.errors import DomainError, MalformedInput, NotFound

T = TypeVar("T")
log = logging.getLogger(__name__)
READ_CHUNK = 1024 * 1024
MAX_FRAMES_PER_REQUEST = 10_000
BOUNDARY_LENGTH = 32
"""Hex digits of a frames response's ETag that make its multipart boundary."""


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
    """GET /dicom-web/studies/{study}[/series/{series}[/instances/{instance}]].

    Instances go as stored for transfer-syntax=* or their own syntax, else in the
    syntax asked for (Explicit VR Little Endian when none is named), transcoded one
    at a time off the event loop. With no syntax named, an instance that cannot be
    decoded here (no codec, corrupt pixel data, decoded size past max_inflated_bytes)
    is sent as stored rather than failing the whole retrieval; its part's
    Content-Type names the syntax actually sent.
    """
    found = await lookup.locate(request, "instances")
    storage = request.app[keys.ARCHIVE].storage
    limit = request.app[keys.SETTINGS].max_inflated_bytes
    media = negotiate_instances(
        request,
        {item.transfer_syntax_uid for item in found},
        single="instance" in request.match_info,
    )
    target = media.transfer_syntax
    converted = [item for item in found if target and item.transfer_syntax_uid != target]
    if target and media.requested and len(converted) > 1:
        await asyncio.to_thread(_check_transcodes, storage, converted, target, limit)
    if media.single:
        item = found[0]
        body = await _transcoded(storage, item, media, limit)
        syntax = target if body is not None and target else item.transfer_syntax_uid
        response = web.StreamResponse(
            headers={hdrs.CONTENT_TYPE: f"{DICOM}; transfer-syntax={syntax}"}
        )
        response.content_length = item.size if body is None else len(body)
        await response.prepare(request)
        if body is None:
            async for chunk in _blob(storage, item.sha256):
                await response.write(chunk)
        else:
            await response.write(body)
        await response.write_eof()
        return response
    stream = MultipartStream(request, DICOM)
    for index, item in enumerate(found):
        try:
            body = await _transcoded(storage, item, media, limit)
        except DomainError as error:
            if index == 0:
                raise
            # Checked before the status was sent, so only corrupt pixel data gets here.
            return _abort(request, stream, item, error)
        if index == 0:
            await stream.start()
        if body is None:
            content_type = f"{DICOM}; transfer-syntax={item.transfer_syntax_uid}"
            await stream.part(content_type, _blob(storage, item.sha256))
        else:
            await stream.part(f"{DICOM}; transfer-syntax={target}", body)
        del body
    return await stream.finish()


async def _transcoded(
    storage: BlobStorage, item: archive.StoredInstance, media: InstanceMedia, limit: int
) -> bytes | None:
    """The instance in the negotiated syntax, or None to send the stored bytes."""
    target = media.transfer_syntax
    if target is None or item.transfer_syntax_uid == target:
        return None
    try:
        return await asyncio.to_thread(
            _with_blob,
            storage,
            item.sha256,
            lambda source: transcoding.transcode(source, target, max_inflated_bytes=limit),
        )
    except transcoding.TranscodingError as error:
        if not media.requested:
            return None
        raise _refusal(error, item.transfer_syntax_uid) from None


def _check_transcodes(
    storage: BlobStorage, items: list[archive.StoredInstance], target: str, limit: int
) -> None:
    """Refuse before anything is sent when an instance cannot be transcoded (blocking)."""
    for item in items:
        try:
            _with_blob(
                storage,
                item.sha256,
                lambda source: transcoding.check_transcode(
                    source, target, max_inflated_bytes=limit
                ),
            )
        except transcoding.TranscodingError as error:
            raise _refusal(error, item.transfer_syntax_uid) from None


def _refusal(error: transcoding.TranscodingError, stored: str) -> DomainError:
    """The domain error of a transcoding or decoding refusal."""
    if error.reason in ("no_such_frame", "no_pixel_data"):
        return NotFound(error.message)
    return NotAcceptable(
        f"{error.message} The instance is stored as {UID(stored).name or stored} ({stored}); "
        "ask for transfer-syntax=* to receive it as stored.",
        details={"reason": error.reason},
    )


def _abort(
    request: web.Request, stream: MultipartStream, item: archive.StoredInstance, error: Exception
) -> web.StreamResponse:
    """Cut a multipart response short: its status is sent, so the client sees a broken body."""
    log.warning(
        "transcoding failed mid-response; connection closed",
        extra={"sop_instance_uid": item.sop_instance_uid, "error": str(error)},
    )
    if request.transport is not None:
        request.transport.close()
    return stream.response


@allow(*ROLES)
async def retrieve_metadata(request: web.Request) -> web.StreamResponse:
    """GET .../metadata of a study, series or instance: DICOM JSON with BulkDataURIs."""
    negotiate_json(request)
    found = await lookup.locate(request, "metadata")
    documents = await asyncio.to_thread(
        _metadata, request.app[keys.ARCHIVE].storage, found, base_url(request)
    )
    return web.Response(body=json.dumps(documents).encode(), content_type=DICOM_JSON)


def _metadata(
    storage: BlobStorage, found: list[archive.StoredInstance], base: str
) -> list[dict[str, Any]]:
    documents = []
    for item in found:
        with storage.open(item.sha256) as source:
            documents.append(
                dicomjson.instance_metadata(
                    source, bulk_data_uri=partial(urls.bulk_data, _instance_url(base, item))
                )
            )
    return documents


def _instance_url(base: str, item: archive.StoredInstance) -> str:
    return urls.instance(item.study_uid, item.series_uid, item.sop_instance_uid, root=base)


def _frame_numbers(request: web.Request) -> list[int]:
    numbers = path_frames(request)
    if len(numbers) > MAX_FRAMES_PER_REQUEST:
        raise MalformedInput(f"Ask for at most {MAX_FRAMES_PER_REQUEST} frames at once.")
    return numbers


def _part_type(media_type: str, transfer_syntax_uid: str) -> str:
    if media_type == OCTET_STREAM and not UID(transfer_syntax_uid).is_encapsulated:
        transfer_syntax_uid = ExplicitVRLittleEndian
    return f"{media_type}; transfer-syntax={transfer_syntax_uid}"


@dataclass(frozen=True, slots=True)
class Representation:
    """Frames or bulk data of an instance as one response: its tag and its headers."""

    tag: str
    headers: dict[str, str]


def _representation(
    request: web.Request, item: archive.StoredInstance, resource: str, content_type: str
) -> Representation:
    """The strong ETag and caching headers of a resource's stored bytes sent as content_type."""
    tag = conditional.entity_tag(resource, item.sha256, content_type)
    cache_control = (
        conditional.REVALIDATE
        if conditional.instances_replaceable(request)
        else conditional.IMMUTABLE
    )
    return Representation(tag, conditional.validators(tag, cache_control))


async def _send_parts(
    request: web.Request,
    media_type: str,
    content_type: str,
    parts: list[bytes],
    representation: Representation,
) -> web.StreamResponse:
    if conditional.not_modified(request, representation.tag, found=True):
        return conditional.not_modified_response(representation.headers)
    stream = MultipartStream(
        request,
        media_type,
        boundary=representation.tag[:BOUNDARY_LENGTH],
        headers=representation.headers,
    )
    await stream.start()
    for part in parts:
        await stream.part(content_type, part)
    return await stream.finish()


_DECODED = f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}"


def _decode(source: BinaryIO, indexes: list[int] | None, limit: int) -> list[bytes]:
    """Decode frames (all when None) of encapsulated pixel data (blocking)."""
    return transcoding.decode_frames(source, indexes, max_inflated_bytes=limit)


# How a refusal to read frames or bulk data as stored is answered.
STORED_REFUSALS: dict[frames.FrameReason | bulkdata.BulkDataReason, type[DomainError]] = {
    "no_pixel_data": NotFound,
    "no_such_frame": NotFound,
    "missing_frame": NotFound,
    "no_such_bulk_data": NotFound,
    "no_frame_size": NotAcceptable,
    "unaligned_frames": NotAcceptable,
    "unsplittable_fragments": NotAcceptable,
}


async def _blob_parts(
    request: web.Request, item: archive.StoredInstance, read: Callable[[BinaryIO], list[bytes]]
) -> list[bytes]:
    """Frames or bulk data of a stored instance, off the event loop; refusals as domain errors."""
    try:
        return await asyncio.to_thread(
            _with_blob, request.app[keys.ARCHIVE].storage, item.sha256, read
        )
    except transcoding.TranscodingError as error:
        raise _refusal(error, item.transfer_syntax_uid) from None
    except (frames.FrameError, bulkdata.BulkDataError) as error:
        raise STORED_REFUSALS[error.reason](error.message) from None


@allow(*ROLES)
async def retrieve_frames(request: web.Request) -> web.StreamResponse:
    """GET .../instances/{instance}/frames/{frames}: as stored, or decoded to native bytes."""
    numbers = _frame_numbers(request)
    item = (await lookup.locate(request, "frames"))[0]
    media = negotiate_frames(request, item.transfer_syntax_uid)
    limit = request.app[keys.SETTINGS].max_inflated_bytes
    content_type = (
        _DECODED if media.decode else _part_type(media.media_type, item.transfer_syntax_uid)
    )
    representation = _representation(request, item, f"frames/{numbers}", content_type)
    if conditional.not_modified(request, representation.tag):
        return conditional.not_modified_response(representation.headers)
    if media.decode:
        indexes = [n - 1 for n in numbers]
        decoded = await _blob_parts(request, item, lambda s: _decode(s, indexes, limit))
        return await _send_parts(request, OCTET_STREAM, _DECODED, decoded, representation)
    parts = await _blob_parts(
        request,
        item,
        lambda source: frames.stored_frames(source, numbers, max_inflated_bytes=limit),
    )
    return await _send_parts(request, media.media_type, content_type, parts, representation)


@allow(*ROLES)
async def retrieve_bulk_data(request: web.Request) -> web.StreamResponse:
    """GET .../instances/{instance}/bulkdata/{path}: one BulkDataURI of the metadata."""
    path = request.match_info["path"]
    if not bulkdata.is_bulk_data_path(path):
        raise NotFound(f"No bulk data at {path[:80]!r}.")
    item = (await lookup.locate(request, "bulkdata"))[0]
    encapsulated = (
        path == bulkdata.PIXEL_DATA_PATH and UID(item.transfer_syntax_uid).is_encapsulated
    )
    syntax = item.transfer_syntax_uid if encapsulated else ExplicitVRLittleEndian
    media = negotiate_frames(request, syntax)
    limit = request.app[keys.SETTINGS].max_inflated_bytes
    content_type = _DECODED if media.decode else _part_type(media.media_type, syntax)
    representation = _representation(request, item, f"bulkdata/{path}", content_type)
    if conditional.not_modified(request, representation.tag):
        return conditional.not_modified_response(representation.headers)
    if media.decode:
        decoded = await _blob_parts(request, item, lambda s: [b"".join(_decode(s, None, limit))])
        return await _send_parts(request, OCTET_STREAM, _DECODED, decoded, representation)
    parts = await _blob_parts(
        request,
        item,
        lambda source: bulkdata.bulk_data(source, path, max_inflated_bytes=limit),
    )
    return await _send_parts(request, media.media_type, content_type, parts, representation)
