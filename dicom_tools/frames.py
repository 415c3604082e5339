"""Frames of an instance's Pixel Data (PS3.5 8.2, Annex A.4), as stored: nothing is decoded.

Frames are numbered from 1 to Number of Frames (0028,0008), one frame when it is
absent. Native (uncompressed) pixel data is cut into frames and returned little
endian, as PS3.18 requires for application/octet-stream; encapsulated pixel data
is split into the stored fragments of each frame. Pixel Data is found by walking
the stored bytes (memory-mapped when the source is a file); only the frames asked
for are copied out. Every function blocks.
"""

from __future__ import annotations

import io
import mmap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Literal

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID

from dicom_tools.byte_order import swapped
from dicom_tools.deflate import inflate_dataset
from dicom_tools.elements import (
    MAX_ELEMENT_LENGTH,
    PIXEL_DATA,
    Buffer,
    ElementHeader,
    walk_dataset,
    walk_file_meta,
)
from dicom_tools.errors import ReasonedError
from dicom_tools.preamble import DATASET_OFFSET
from dicom_tools.transfer_syntaxes import dataset_encoding

FrameReason = Literal[
    "no_pixel_data",
    "no_such_frame",
    "missing_frame",
    "no_frame_size",
    "unaligned_frames",
    "unsplittable_fragments",
]
"""Stable codes of :class:`FrameError`.

- ``no_pixel_data``: the instance has no Pixel Data (ECG waveform, SR, PDF...), so no frames.
- ``no_such_frame``: a frame number is outside 1..Number of Frames.
- ``missing_frame``: the frame lies past the end of the stored native pixel data.
- ``no_frame_size``: native pixel data without Rows, Columns and Bits Allocated.
- ``unaligned_frames``: native frames that do not end on a byte (1-bit pixels).
- ``unsplittable_fragments``: the encapsulated fragments cannot be split into the frames.
"""


class FrameError(ReasonedError[FrameReason]):
    """A frame, or the pixel data, cannot be read as stored."""


def frame_count(ds: Dataset) -> int:
    """The number of frames of an image: Number of Frames, else 1."""
    return int(ds.get("NumberOfFrames") or 1)


def stored_frames(
    source: BinaryIO, numbers: Sequence[int], *, max_inflated_bytes: int
) -> list[bytes]:
    """The frames with these numbers (from 1), in their stored encoding (native: little endian)."""
    with _contents(source) as data:
        pixels = _pixels(source, data, max_inflated_bytes)
        count = frame_count(pixels.header)
        for number in numbers:
            if not 1 <= number <= count:
                raise FrameError(
                    "no_such_frame",
                    f"Frame {number} does not exist; the instance has {count} frames.",
                )
        if UID(pixels.syntax).is_encapsulated:
            return _encapsulated_frames(pixels, [n - 1 for n in numbers], count)
        return [_native_frame(pixels, number - 1) for number in numbers]


def stored_pixel_data(source: BinaryIO, *, max_inflated_bytes: int) -> list[bytes]:
    """The Pixel Data value: each frame's fragments when encapsulated, else one value (LE)."""
    with _contents(source) as data:
        pixels = _pixels(source, data, max_inflated_bytes)
        if UID(pixels.syntax).is_encapsulated:
            count = frame_count(pixels.header)
            return _encapsulated_frames(pixels, list(range(count)), count)
        element = pixels.element
        value = bytes(pixels.body[element.value_offset : element.value_offset + element.length])
        return [_little_endian(pixels, value)]


@dataclass(frozen=True, slots=True)
class _Pixels:
    header: Dataset
    syntax: str
    little_endian: bool
    body: Buffer
    element: ElementHeader


@contextmanager
def _contents(source: BinaryIO) -> Iterator[Buffer]:
    """The whole blob, memory-mapped when it is a file."""
    try:
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, io.UnsupportedOperation):
        source.seek(0)
        yield source.read()
        return
    with mapped:
        yield mapped


def _pixels(source: BinaryIO, data: Buffer, max_inflated_bytes: int) -> _Pixels:
    """Locate the top-level Pixel Data element without reading it."""
    source.seek(0)
    header = dcmread(source, stop_before_pixels=True)
    syntax = str(header.file_meta.TransferSyntaxUID)
    encoding = dataset_encoding(syntax)
    body: Buffer = data
    start = walk_file_meta(data, DATASET_OFFSET, max_element_length=MAX_ELEMENT_LENGTH).end
    if encoding.deflated:
        body, start = inflate_dataset(data, start, max_inflated_bytes=max_inflated_bytes), 0
    layout = walk_dataset(
        body,
        start,
        len(body),
        implicit_vr=encoding.implicit_vr,
        little_endian=encoding.little_endian,
        max_element_length=MAX_ELEMENT_LENGTH,
    )
    element = next((e for e in layout.elements if e.tag == PIXEL_DATA), None)
    if element is None:
        raise FrameError("no_pixel_data", "The instance has no pixel data, so it has no frames.")
    return _Pixels(header, syntax, encoding.little_endian, body, element)


def _native_frame(pixels: _Pixels, index: int) -> bytes:
    header = pixels.header
    if not all(header.get(k) for k in ("Rows", "Columns", "BitsAllocated")):
        raise FrameError(
            "no_frame_size", "Pixel data without Rows, Columns and Bits Allocated has no frames."
        )
    bits = int(header.Rows) * int(header.Columns) * int(header.get("SamplesPerPixel") or 1)
    bits *= int(header.BitsAllocated)
    if bits % 8:
        raise FrameError(
            "unaligned_frames", "Frames of 1-bit pixel data that do not end on a byte are not sent."
        )
    size = bits // 8
    if (index + 1) * size > pixels.element.length:
        raise FrameError(
            "missing_frame", f"Frame {index + 1} is missing from the stored pixel data."
        )
    offset = pixels.element.value_offset + index * size
    return _little_endian(pixels, bytes(pixels.body[offset : offset + size]))


def _encapsulated_frames(pixels: _Pixels, indexes: list[int], count: int) -> list[bytes]:
    header = pixels.header
    extended = None
    if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
        extended = (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)
    element = pixels.element
    buffer = bytes(pixels.body[element.value_offset : element.end])
    try:
        return [
            get_frame(buffer, index, extended_offsets=extended, number_of_frames=count)
            for index in indexes
        ]
    except ValueError as error:
        raise FrameError(
            "unsplittable_fragments", f"The stored fragments cannot be split into frames: {error}"
        ) from None


def _little_endian(pixels: _Pixels, value: bytes) -> bytes:
    """Native pixel data as PS3.18 sends it: little endian words."""
    if pixels.little_endian or pixels.element.vr == "OB":
        return value
    return swapped(value, 4 if int(pixels.header.BitsAllocated) == 32 else 2)
