import pytest

from dicom_tools.errors import IngestError
from dicom_tools.preamble import classify_preamble, neutralise_preamble

from .part10 import dataset, part10


def _preamble(head: bytes) -> bytes:
    return head + bytes(128 - len(head))


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"", "zero"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"MZ\x90\x00\x03\x00", "executable"),
        (b"\x7fELF\x02\x01\x01", "executable"),
        (b"\xcf\xfa\xed\xfe", "executable"),
        (b"#!/bin/sh\n", "executable"),
        (b"\x00" * 127 + b"\x01", "other"),
        (b"II*\x01", "other"),  # not a TIFF header
        (b"PK\x03\x04", "other"),
    ],
)
def test_classify_preamble(head: bytes, kind: str) -> None:
    assert classify_preamble(_preamble(head)) == kind


def test_classify_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="128"):
        classify_preamble(bytes(127))


def test_executable_preamble_is_zeroed_and_the_rest_is_byte_identical() -> None:
    original = part10(dataset(), preamble=_preamble(b"MZ\x90\x00" + b"\xcc" * 60))
    result = neutralise_preamble(original)
    assert result.neutralised
    assert result.kind == "executable"
    assert result.data[:128] == bytes(128)
    assert result.data[128:] == original[128:]
    assert len(result.data) == len(original)


@pytest.mark.parametrize("head", [b"", b"II*\x00\x08\x00\x00\x00", b"MM\x00*\x00\x00\x00\x08"])
def test_zero_and_tiff_preambles_are_kept(head: bytes) -> None:
    original = part10(dataset(), preamble=_preamble(head))
    result = neutralise_preamble(original)
    assert not result.neutralised
    assert result.data == original


def test_neutralise_requires_part10() -> None:
    with pytest.raises(IngestError) as caught:
        neutralise_preamble(b"MZ" + bytes(200))
    assert caught.value.reason == "not_dicom"
