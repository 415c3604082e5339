"""Frames and bulk data of a stored instance, as stored: no pixel is decoded (blocking code).

Native (uncompressed) pixel data is cut into frames and sent little endian, as
PS3.18 requires for application/octet-stream; encapsulated pixel data is split
into the stored fragments of each frame.
"""

from __future__ import annotations

import io
import mmap
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID

from dicom_tools.byte_order import WORD_WIDTH, swapped
from dicom_tools.deflate import inflate_dataset
from dicom_tools.elements import (
    MAX_ELEMENT_LENGTH,
    PIXEL_DATA,
    Buffer,
    ElementHeader,
    walk_dataset,
    walk_file_meta,
)
from dicom_tools.preamble import DATASET_OFFSET
from dicom_tools.transfer_syntaxes import dataset_encoding
from server.dicomweb.media import NotAcceptable
from server.errors import NotFound

BULK_DATA_PATH = re.compile(r"[0-9A-F]{8}(?:/[0-9]{1,6}/[0-9A-F]{8}){0,16}")


@dataclass(frozen=True, slots=True)
class _Pixels:
    header: Dataset
    syntax: str
    little_endian: bool
    body: Buffer
    element: ElementHeader


def read_frames(
    source: BinaryIO, numbers: Sequence[int], *, max_inflated_bytes: int
) -> list[bytes]:
    """The requested frames (numbered from 1) in their stored encoding."""
    with _contents(source) as data:
        pixels = _pixels(source, data, max_inflated_bytes)
        count = int(pixels.header.get("NumberOfFrames") or 1)
        for number in numbers:
            if not 1 <= number <= count:
                raise NotFound(f"Frame {number} does not exist; the instance has {count} frames.")
        if UID(pixels.syntax).is_encapsulated:
            return _encapsulated_frames(pixels, [n - 1 for n in numbers], count)
        return [_native_frame(pixels, number - 1) for number in numbers]


def read_bulk_data(source: BinaryIO, path: str, *, max_inflated_bytes: int) -> list[bytes]:
    """The value at a BulkDataURI path (``TAG/ITEM/TAG...``); encapsulated pixels per frame."""
    if not BULK_DATA_PATH.fullmatch(path):
        raise NotFound(f"No bulk data at {path[:80]!r}.")
    if path == f"{PIXEL_DATA:08X}":
        with _contents(source) as data:
            pixels = _pixels(source, data, max_inflated_bytes)
            if UID(pixels.syntax).is_encapsulated:
                count = int(pixels.header.get("NumberOfFrames") or 1)
                return _encapsulated_frames(pixels, list(range(count)), count)
            element = pixels.element
            value = bytes(pixels.body[element.value_offset : element.value_offset + element.length])
            return [_little_endian(pixels, value)]
    source.seek(0)
    ds = dcmread(source)
    current: Dataset = ds
    steps = path.split("/")
    try:
        for tag, index in zip(steps[:-2:2], steps[1:-1:2], strict=True):
            current = current[int(tag, 16)].value[int(index)]
        found = current[int(steps[-1], 16)]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise NotFound(f"No bulk data at {path}.") from None
    if not isinstance(found.value, bytes):
        raise NotFound(f"No bulk data at {path}.")
    width = WORD_WIDTH.get(found.VR)
    if not UID(ds.file_meta.TransferSyntaxUID).is_little_endian and width:
        return [swapped(found.value, width)]
    return [found.value]


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
        raise NotFound("The instance has no pixel data, so it has no frames.")
    return _Pixels(header, syntax, encoding.little_endian, body, element)


def _native_frame(pixels: _Pixels, index: int) -> bytes:
    header = pixels.header
    if not all(header.get(k) for k in ("Rows", "Columns", "BitsAllocated")):
        raise NotAcceptable("Pixel data without Rows, Columns and Bits Allocated has no frames.")
    bits = int(header.Rows) * int(header.Columns) * int(header.get("SamplesPerPixel") or 1)
    bits *= int(header.BitsAllocated)
    if bits % 8:
        raise NotAcceptable("Frames of 1-bit pixel data that do not end on a byte are not sent.")
    size = bits // 8
    if (index + 1) * size > pixels.element.length:
        raise NotFound(f"Frame {index + 1} is missing from the stored pixel data.")
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
        raise NotAcceptable(f"The stored fragments cannot be split into frames: {error}") from None


def _little_endian(pixels: _Pixels, value: bytes) -> bytes:
    """Native pixel data as PS3.18 sends it: little endian words."""
    if pixels.little_endian or pixels.element.vr == "OB":
        return value
    return swapped(value, 4 if int(pixels.header.BitsAllocated) == 32 else 2)
