"""Frames as stored: native frames cut and sent little endian, encapsulated ones as fragments."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEGBaseline8Bit

from dicom_tools.frames import FrameError, frame_count, stored_frames, stored_pixel_data

from .part10 import PIXEL_DATA, bundled, dataset, part10

LIMIT = 64 * 1024 * 1024


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def native(frames: int = 2, *, pixels: bytes = bytes(range(24)), **extra: bytes) -> bytes:
    """A native 16-bit instance of 2x3 frames, with attributes replaced by tag keyword."""
    attributes = {
        "SamplesPerPixel": (0x00280002, "US", _us(1)),
        "NumberOfFrames": (0x00280008, "IS", str(frames).encode()),
        "Rows": (0x00280010, "US", _us(2)),
        "Columns": (0x00280011, "US", _us(3)),
        "BitsAllocated": (0x00280100, "US", _us(16)),
    }
    for keyword, value in extra.items():
        tag, vr, _ = attributes[keyword]
        attributes[keyword] = (tag, vr, value)
    body = dataset(
        replace={PIXEL_DATA: pixels},
        extra={tag: (vr, value) for tag, vr, value in attributes.values() if value},
    )
    return part10(body)


def encapsulated(fragments: list[bytes], frames: int) -> bytes:
    """A JPEG Baseline instance whose pixel data is these fragments, with no offset table."""
    ds = pydicom.dcmread(bundled("JPEG-lossy.dcm"))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.NumberOfFrames = frames
    ds.PixelData = encapsulate(fragments, has_bot=False)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _source(data: bytes) -> BinaryIO:
    return io.BytesIO(data)


def test_native_frames_in_any_order() -> None:
    frames = stored_frames(_source(native()), [2, 1, 2], max_inflated_bytes=LIMIT)
    assert frames == [bytes(range(12, 24)), bytes(range(12)), bytes(range(12, 24))]


def test_a_file_is_read_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "two-frames.dcm"
    path.write_bytes(native())
    with path.open("rb") as source:
        assert stored_frames(source, [1], max_inflated_bytes=LIMIT) == [bytes(range(12))]
        assert stored_pixel_data(source, max_inflated_bytes=LIMIT) == [bytes(range(24))]


def test_big_endian_frames_are_sent_little_endian() -> None:
    big = bundled("MR_small_bigendian.dcm").read_bytes()
    little = pydicom.dcmread(bundled("MR_small.dcm")).PixelData
    assert stored_frames(_source(big), [1], max_inflated_bytes=LIMIT) == [little]
    assert stored_pixel_data(_source(big), max_inflated_bytes=LIMIT) == [little]


def test_a_deflated_dataset_is_inflated_within_the_limit() -> None:
    data = bundled("image_dfl.dcm").read_bytes()
    expected = pydicom.dcmread(bundled("image_dfl.dcm")).PixelData
    assert stored_frames(_source(data), [1], max_inflated_bytes=LIMIT) == [expected]


def test_encapsulated_frames_are_their_stored_fragments() -> None:
    path = bundled("examples_ybr_color.dcm")
    ds = pydicom.dcmread(path)
    expected = list(generate_frames(ds.PixelData, number_of_frames=30))
    data = path.read_bytes()
    assert stored_frames(_source(data), [30, 1], max_inflated_bytes=LIMIT) == [
        expected[29],
        expected[0],
    ]
    assert stored_pixel_data(_source(data), max_inflated_bytes=LIMIT) == expected


def test_frame_count() -> None:
    assert frame_count(pydicom.dcmread(bundled("examples_ybr_color.dcm"))) == 30
    assert frame_count(pydicom.dcmread(bundled("CT_small.dcm"))) == 1  # no Number of Frames


@pytest.mark.parametrize(
    ("data", "numbers", "reason"),
    [
        (part10(dataset(omit=(PIXEL_DATA,))), [1], "no_pixel_data"),
        (native(), [3], "no_such_frame"),
        (native(), [0], "no_such_frame"),
        (native(3), [3], "missing_frame"),
        (native(Rows=b""), [1], "no_frame_size"),
        (native(1, pixels=b"\x00\x00", Rows=_us(3), BitsAllocated=_us(1)), [1], "unaligned_frames"),
        (encapsulated([b"ab", b"cd", b"ef"], 2), [2], "unsplittable_fragments"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_refusals(data: bytes, numbers: list[int], reason: str) -> None:
    with pytest.raises(FrameError) as raised:
        stored_frames(_source(data), numbers, max_inflated_bytes=LIMIT)
    assert raised.value.reason == reason
    assert raised.value.message
