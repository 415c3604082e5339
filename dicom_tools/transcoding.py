"""Transcoding of stored instances and decoding of frames (PS3.18 8.7.3, PS3.5 Annex A).

The archive sends instances in a native transfer syntax it can produce —
Explicit or Implicit VR Little Endian — from any stored syntax it can decode:
encapsulated pixel data is decompressed by pydicom's ``pixels`` backend (with
pylibjpeg and pillow), YBR colour converted to RGB as ``Dataset.decompress``
does; deflated and big endian datasets are re-encoded. It never compresses.

The decoded pixel data is sized from the Image Pixel attributes before anything
is decoded and refused past a limit, and a deflated dataset is inflated within
the same limit, so a small stored file never becomes an unbounded allocation.
Every function blocks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, BinaryIO, Literal

import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import decompress, pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)

from dicom_tools.byte_order import WORD_WIDTH, swapped
from dicom_tools.deflate import inflate_dataset
from dicom_tools.elements import MAX_ELEMENT_LENGTH, PIXEL_DATA, walk_file_meta
from dicom_tools.errors import IngestError, ReasonedError
from dicom_tools.frames import frame_count
from dicom_tools.preamble import DATASET_OFFSET, PREAMBLE_LENGTH
from dicom_tools.transfer_syntaxes import dataset_encoding

TranscodingReason = Literal[
    "not_dicom",
    "unsupported_transfer_syntax",
    "no_decoder",
    "undecodable",
    "too_large",
    "no_pixel_data",
    "no_such_frame",
]
"""Stable codes of :class:`TranscodingError`.

- ``not_dicom``: the bytes are not a readable Part 10 file.
- ``unsupported_transfer_syntax``: the target is not a syntax this module produces.
- ``no_decoder``: no installed decoder handles the stored transfer syntax.
- ``undecodable``: the stored pixel data cannot be decoded or re-encoded.
- ``too_large``: the decoded pixel data (or the inflated dataset) exceeds the limit.
- ``no_pixel_data``: frames were asked of an object without pixel data.
- ``no_such_frame``: a frame index is outside the frames of the instance.
"""

TRANSCODE_TARGETS = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
"""The transfer syntaxes :func:`transcode` produces."""

# Syntaxes whose decoded pixels differ from the original image (PS3.3 C.7.6.1.1.5).
_LOSSY_METHODS: dict[str, str] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
}
_ENCAPSULATION_ONLY = ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")
_REWRITTEN_META = (
    "FileMetaInformationGroupLength",
    "ImplementationClassUID",
    "ImplementationVersionName",
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "SourcePresentationAddress",
    "SendingPresentationAddress",
    "ReceivingPresentationAddress",
    "PrivateInformationCreatorUID",
    "PrivateInformation",
)


class TranscodingError(ReasonedError[TranscodingReason]):
    """An instance cannot be sent as asked."""


def can_decode(transfer_syntax_uid: str) -> bool:
    """Whether pixel data stored in this standard syntax can be read as native pixels here."""
    uid = UID(transfer_syntax_uid)
    if uid.is_private or not uid.is_transfer_syntax:
        return False
    if not uid.is_encapsulated:
        return True
    try:
        return bool(get_decoder(uid).is_available)
    except NotImplementedError:
        return False


def can_transcode(stored: str, target: str) -> bool:
    """Whether :func:`transcode` can turn an instance stored in ``stored`` into ``target``."""
    return stored == target or (target in TRANSCODE_TARGETS and can_decode(stored))


def decoded_size(ds: Dataset) -> int:
    """Bytes of the native pixel data the Image Pixel attributes describe (0 without an image)."""
    if "PixelData" not in ds and "Rows" not in ds:
        return 0
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.BitsAllocated)
        frames = frame_count(ds)
    except (AttributeError, TypeError, ValueError):
        raise TranscodingError(
            "undecodable", "Pixel data without usable Rows, Columns and Bits Allocated."
        ) from None
    return math.ceil(rows * columns * samples * bits / 8) * max(frames, 1)


def check_transcode(source: bytes | BinaryIO, target: str, *, max_inflated_bytes: int) -> None:
    """Raise what :func:`transcode` would for the syntaxes or the size, reading no pixels."""
    ds = _read(source, max_inflated_bytes=max_inflated_bytes, stop_before_pixels=True)
    stored = str(ds.file_meta.TransferSyntaxUID)
    if stored != target:
        _check_syntaxes(stored, target)
        _check_size(ds, decoded_size(ds), max_inflated_bytes)


def transcode(source: bytes | BinaryIO, target: str, *, max_inflated_bytes: int) -> bytes:
    """The Part 10 bytes of the instance in ``target``; stored bytes when already in it.

    The SOP Instance UID is kept; the preamble is zeroed and the File Meta
    Information regenerated. Decoded pixel data larger than ``max_inflated_bytes``
    is refused before it is decoded.
    """
    data = source if isinstance(source, bytes) else _read_all(source)
    ds = _read(data, max_inflated_bytes=max_inflated_bytes)
    stored = str(ds.file_meta.TransferSyntaxUID)
    if stored == target:
        return data
    _check_syntaxes(stored, target)
    _check_size(ds, decoded_size(ds), max_inflated_bytes)
    uid = UID(stored)
    try:
        if "PixelData" in ds and uid.is_encapsulated:
            _decompress(ds, stored)
        elif not uid.is_little_endian:
            _swap_to_little_endian(ds)
        return _written(ds, target)
    except TranscodingError:
        raise
    except Exception as error:  # codecs and the writer raise anything on odd data
        raise TranscodingError(
            "undecodable", f"The instance cannot be re-encoded from {uid.name}: {error}"
        ) from None


def decode_frames(
    source: bytes | BinaryIO, indexes: Sequence[int] | None, *, max_inflated_bytes: int
) -> list[bytes]:
    """Frames (indexes from 0; None for all) of encapsulated pixel data as native LE bytes.

    Colour frames are RGB, interleaved (Planar Configuration 0), as ``transcode``
    writes them; the requested frames together may not decode past the limit.
    """
    ds = _read(source, max_inflated_bytes=max_inflated_bytes)
    if "PixelData" not in ds:
        raise TranscodingError("no_pixel_data", "The instance has no pixel data.")
    stored = str(ds.file_meta.TransferSyntaxUID)
    if not can_decode(stored):
        raise TranscodingError("no_decoder", _no_decoder(stored))
    count = frame_count(ds)
    indexes = range(count) if indexes is None else indexes
    for index in indexes:
        if not 0 <= index < count:
            raise TranscodingError(
                "no_such_frame",
                f"Frame {index + 1} does not exist; the instance has {count} frames.",
            )
    _check_size(ds, decoded_size(ds) // max(count, 1) * len(indexes), max_inflated_bytes)
    frames = []
    for index in indexes:
        try:
            pixels = pixel_array(ds, index=index, as_rgb=True)
        except Exception as error:  # codecs raise anything on corrupt data
            raise TranscodingError(
                "undecodable", f"Frame {index + 1} cannot be decoded: {error}"
            ) from None
        frames.append(_little_endian_bytes(pixels))
    return frames


def _read_all(source: BinaryIO) -> bytes:
    source.seek(0)
    return source.read()


def _read(
    source: bytes | BinaryIO, *, max_inflated_bytes: int, stop_before_pixels: bool = False
) -> Dataset:
    """The dataset with its File Meta; a deflated one is inflated within the limit."""
    data = source if isinstance(source, bytes) else _read_all(source)
    try:
        meta_end = walk_file_meta(data, DATASET_OFFSET, max_element_length=MAX_ELEMENT_LENGTH).end
        meta = read_dataset(
            io.BytesIO(data[DATASET_OFFSET:meta_end]), is_implicit_VR=False, is_little_endian=True
        )
        encoding = dataset_encoding(str(meta.TransferSyntaxUID))
        if not encoding.deflated:
            return dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
        body = inflate_dataset(data, meta_end, max_inflated_bytes=max_inflated_bytes)
        ds = read_dataset(io.BytesIO(body), is_implicit_VR=False, is_little_endian=True)
    except IngestError as error:
        reason: TranscodingReason = (
            "too_large" if error.reason == "inflated_too_large" else "not_dicom"
        )
        raise TranscodingError(reason, f"The stored instance cannot be read: {error}") from None
    except Exception as error:  # pydicom raises many types on malformed input
        raise TranscodingError("not_dicom", f"The object is not readable DICOM: {error}") from None
    ds.file_meta = FileMetaDataset(meta)
    return ds


def _check_syntaxes(stored: str, target: str) -> None:
    if target not in TRANSCODE_TARGETS:
        raise TranscodingError(
            "unsupported_transfer_syntax",
            f"The archive transcodes to {', '.join(sorted(TRANSCODE_TARGETS))} only, "
            f"not to {UID(target).name or target}.",
        )
    if not can_decode(stored):
        raise TranscodingError("no_decoder", _no_decoder(stored))


def _no_decoder(stored: str) -> str:
    return f"No decoder is installed for pixel data in {UID(stored).name or stored}."


def _check_size(ds: Dataset, size: int, limit: int) -> None:
    if size > limit:
        raise TranscodingError(
            "too_large",
            f"Decoding needs {size} bytes of pixel data, more than the limit of {limit} bytes.",
        )


def _decompress(ds: Dataset, stored: str) -> None:
    """Decode encapsulated pixel data in place, as Explicit VR Little Endian, keeping the UID."""
    decompress(ds, as_rgb=True, generate_instance_uid=False)
    for keyword in _ENCAPSULATION_ONLY:
        if keyword in ds:
            del ds[keyword]
    method = _LOSSY_METHODS.get(stored)
    if method and ds.get("LossyImageCompression") != "01":
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds:
            ds.LossyImageCompressionMethod = method


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the OW/OL/OF/OD/OV values pydicom keeps as big endian bytes."""

    def swap(dataset: Dataset, element: DataElement) -> None:
        width = WORD_WIDTH.get(element.VR)
        if not width or not isinstance(element.value, bytes):
            return
        if element.tag == PIXEL_DATA and dataset is ds:
            width = 4 if int(ds.get("BitsAllocated") or 16) == 32 else 2
        element.value = swapped(element.value, width)

    ds.walk(swap)


def _written(ds: Dataset, target: str) -> bytes:
    """Part 10 bytes in ``target``: zero preamble, regenerated File Meta Information."""
    meta = ds.file_meta
    for keyword in _REWRITTEN_META:
        if keyword in meta:
            del meta[keyword]
    meta.TransferSyntaxUID = UID(target)
    ds.preamble = bytes(PREAMBLE_LENGTH)
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def _little_endian_bytes(pixels: np.ndarray[Any, Any]) -> bytes:
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    return bytes(np.ascontiguousarray(little).tobytes())
