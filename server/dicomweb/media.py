"""Media types of PS3.18 8.7: the Accept header and what each resource can be sent as."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydicom import uid
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_tools.transcoding import can_decode, can_transcode
from server.errors import DomainError

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"

_JSON_TYPES = frozenset({DICOM_JSON, "application/json", "application/*", "*/*"})

# PS3.18 Table 8.7.3-2: media types of compressed frames, by transfer syntax.
FRAME_MEDIA_TYPES: dict[str, str] = {
    uid.JPEGBaseline8Bit: "image/jpeg",
    uid.JPEGExtended12Bit: "image/jpeg",
    uid.JPEGLossless: "image/jpeg",
    uid.JPEGLosslessSV1: "image/jpeg",
    uid.JPEGLSLossless: "image/jls",
    uid.JPEGLSNearLossless: "image/jls",
    uid.JPEG2000Lossless: "image/jp2",
    uid.JPEG2000: "image/jp2",
    uid.JPEG2000MCLossless: "image/jpx",
    uid.JPEG2000MC: "image/jpx",
    uid.HTJ2KLossless: "image/jphc",
    uid.HTJ2KLosslessRPCL: "image/jphc",
    uid.HTJ2K: "image/jphc",
    uid.RLELossless: "image/dicom-rle",
}


class NotAcceptable(DomainError):
    """The resource cannot be sent in any media type or transfer syntax the client accepts."""

    status = 406
    code = "not_acceptable"


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header; multipart ranges carry the type of their parts."""

    type: str
    transfer_syntax: str | None
    multipart: bool


def accepted(request: web.Request) -> list[MediaRange]:
    """The media ranges of the Accept header, most preferred first; none given accepts all."""
    header = request.headers.get("Accept", "").strip()
    if not header:
        return [MediaRange("*/*", None, multipart=False)]
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, item in enumerate(header.split(",")):
        name, *params = (p.strip() for p in item.split(";"))
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(values.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0 or not name:
            continue
        name = name.lower()
        multipart = name == "multipart/related"
        part_type = values.get("type", "").lower() if multipart else name
        syntax = values.get("transfer-syntax")
        ranges.append((-quality, index, MediaRange(part_type, syntax, multipart=multipart)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1]))]


def _type_matches(wanted: str, offered: str) -> bool:
    return wanted in ("*/*", offered) or (wanted.endswith("/*") and offered.startswith(wanted[:-1]))


def negotiate_json(request: web.Request) -> None:
    """Accept DICOM JSON responses (QIDO results, metadata) or raise NotAcceptable."""
    for wanted in accepted(request):
        if not wanted.multipart and wanted.type in _JSON_TYPES:
            return
    raise NotAcceptable(f"This resource is sent as {DICOM_JSON}; the Accept header excludes it.")


@dataclass(frozen=True, slots=True)
class InstanceMedia:
    """How instances are sent: one bare body or multipart parts, and in which transfer syntax.

    ``transfer_syntax`` None sends every instance as stored; otherwise instances
    stored in another syntax are transcoded to it. ``requested`` says whether the
    client named that syntax: the PS3.18 default (Explicit VR Little Endian, no
    transfer-syntax parameter) falls back to the stored bytes of an instance the
    archive cannot decode, a named syntax is refused instead.
    """

    single: bool
    transfer_syntax: str | None
    requested: bool


def negotiate_instances(request: web.Request, syntaxes: set[str], *, single: bool) -> InstanceMedia:
    """The first acceptable way to send instances stored in these syntaxes; raise if none."""
    target: str | None
    for wanted in accepted(request):
        syntax = wanted.transfer_syntax
        if syntax == "*":
            target, requested = None, False
        elif syntax is None:
            target, requested = ExplicitVRLittleEndian, False
        elif all(can_transcode(stored, syntax) for stored in syntaxes):
            target, requested = syntax, True
        else:
            continue
        if wanted.multipart and _type_matches(wanted.type or DICOM, DICOM):
            return InstanceMedia(False, target, requested)
        if not wanted.multipart and wanted.type == DICOM and single:
            return InstanceMedia(True, target, requested)
        if not wanted.multipart and wanted.type in ("*/*", "multipart/*", "multipart/related"):
            return InstanceMedia(False, target, requested)
    raise NotAcceptable(
        f'Instances are sent as multipart/related; type="{DICOM}" (or one {DICOM} body), '
        f"stored here as {_names(syntaxes)}. Ask for transfer-syntax=* to receive them as "
        f"stored; the archive transcodes to {ExplicitVRLittleEndian} or "
        f"{ImplicitVRLittleEndian} what it can decode and never compresses."
    )


@dataclass(frozen=True, slots=True)
class FrameMedia:
    """The part media type of frames or pixel data, and whether encapsulated frames are decoded."""

    media_type: str
    decode: bool


def negotiate_frames(request: web.Request, transfer_syntax_uid: str) -> FrameMedia:
    """How frames or pixel data of this stored syntax are sent; raise if the Accept excludes all.

    Compressed frames go as stored to a client that accepts their media type (or
    transfer-syntax=*, or gives no Accept header), and are decoded to native little
    endian bytes for a client that asks for application/octet-stream; the archive
    never compresses native frames.
    """
    compressed = transfer_syntax_uid in FRAME_MEDIA_TYPES
    decodable = compressed and can_decode(transfer_syntax_uid)
    offered = FRAME_MEDIA_TYPES.get(transfer_syntax_uid, OCTET_STREAM)
    offered_syntax = transfer_syntax_uid if compressed else ExplicitVRLittleEndian
    for wanted in accepted(request):
        part_type = wanted.type or OCTET_STREAM
        syntax = wanted.transfer_syntax
        if decodable and part_type == OCTET_STREAM and syntax in (None, ExplicitVRLittleEndian):
            return FrameMedia(OCTET_STREAM, decode=True)
        if syntax not in (None, "*", offered_syntax):
            continue
        if part_type == OCTET_STREAM and (not compressed or syntax == "*"):
            return FrameMedia(OCTET_STREAM, decode=False)
        if part_type != OCTET_STREAM and _type_matches(part_type, offered):
            return FrameMedia(offered, decode=False)
    if compressed:
        decoded = (
            f"{OCTET_STREAM} to have them decoded, "
            if decodable
            else "(no decoder is installed for them here) "
        )
        raise NotAcceptable(
            f"Frames are stored as {offered} (transfer syntax {transfer_syntax_uid}); accept "
            f"that media type, {decoded}or transfer-syntax=* to receive them as stored."
        )
    raise NotAcceptable(
        f"Uncompressed frames are sent as {OCTET_STREAM} in Explicit VR Little Endian; "
        "the archive cannot compress them."
    )


def _names(syntaxes: set[str]) -> str:
    return ", ".join(f"{UID(s).name or s} ({s})" for s in sorted(syntaxes))
