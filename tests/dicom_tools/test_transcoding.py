"""Transcoding of stored instances and decoding of frames, on pydicom's bundled files."""

from __future__ import annotations

import io

import pydicom
import pytest

from dicom_tools.transcoding import (
    TranscodingError,
    can_transcode,
    check_transcode,
    decode_frames,
    transcode,
)
from tests.dicom_tools.part10 import DEFLATED, bundled, deflate_bomb, file_meta

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
LIMIT = 64 * 1024 * 1024


def _bundled(name: str) -> bytes:
    return bundled(name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "examples_jpeg2k.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle_32bit_2frame.dcm",
        "image_dfl.dcm",
        "rtdose_expb.dcm",
        "SC_rgb_small_odd_big_endian.dcm",
        "MR_small_implicit.dcm",
    ],
)
@pytest.mark.parametrize("target", [EXPLICIT, IMPLICIT])
def test_transcoded_pixels_equal_the_decoded_original(name: str, target: str) -> None:
    data = _bundled(name)
    original = pydicom.dcmread(io.BytesIO(data))
    out = transcode(io.BytesIO(data), target, max_inflated_bytes=LIMIT)
    if original.file_meta.TransferSyntaxUID == target:
        assert out == data
        return
    sent = pydicom.dcmread(io.BytesIO(out))
    assert sent.file_meta.TransferSyntaxUID == target
    assert sent.SOPInstanceUID == original.SOPInstanceUID
    assert out[:128] == bytes(128)
    assert (sent.pixel_array == original.pixel_array).all()


def test_frames_decode_to_native_little_endian_bytes() -> None:
    data = _bundled("SC_rgb_rle_16bit_2frame.dcm")
    pixels = pydicom.dcmread(io.BytesIO(data)).pixel_array
    assert decode_frames(data, [1, 0], max_inflated_bytes=LIMIT) == [
        pixels[1].tobytes(),
        pixels[0].tobytes(),
    ]
    with pytest.raises(TranscodingError) as refused:
        decode_frames(data, [2], max_inflated_bytes=LIMIT)
    assert refused.value.reason == "no_such_frame"
    with pytest.raises(TranscodingError) as refused:
        decode_frames(data, [0, 1], max_inflated_bytes=100 * 100 * 6)
    assert refused.value.reason == "too_large"


def test_refusals_have_stable_reasons() -> None:
    native = _bundled("CT_small.dcm")
    with pytest.raises(TranscodingError) as refused:
        transcode(native, "1.2.840.10008.1.2.4.90", max_inflated_bytes=LIMIT)
    assert refused.value.reason == "unsupported_transfer_syntax"
    with pytest.raises(TranscodingError) as refused:
        transcode(_bundled("JPEG-lossy.dcm"), EXPLICIT, max_inflated_bytes=LIMIT)
    assert refused.value.reason == "undecodable"
    jpeg2000 = _bundled("examples_jpeg2k.dcm")
    with pytest.raises(TranscodingError) as refused:
        check_transcode(jpeg2000, EXPLICIT, max_inflated_bytes=640 * 480 * 3 - 1)
    assert refused.value.reason == "too_large"
    check_transcode(jpeg2000, EXPLICIT, max_inflated_bytes=640 * 480 * 3)
    assert can_transcode("1.2.840.10008.1.2.4.50", IMPLICIT)
    assert not can_transcode(EXPLICIT, "1.2.840.10008.1.2.4.50")
    assert not can_transcode("1.2.3.4", EXPLICIT)


def test_a_deflate_bomb_is_refused_within_the_limit() -> None:
    body = deflate_bomb(2 * 1024 * 1024)
    data = bytes(128) + b"DICM" + file_meta(transfer_syntax=DEFLATED) + body
    with pytest.raises(TranscodingError) as refused:
        transcode(data, EXPLICIT, max_inflated_bytes=1024 * 1024)
    assert refused.value.reason == "too_large"
