import struct

import pytest

from dicom_tools.elements import MAX_SEQUENCE_DEPTH, UNDEFINED_LENGTH, walk_dataset, walk_file_meta
from dicom_tools.errors import IngestError

from .part10 import (
    element,
    file_meta,
    implicit_element,
    item,
    item_delimiter,
    sequence,
    sequence_delimiter,
)

LIMIT = 2**31 - 1
PATIENT_NAME = element(0x00100010, "PN", b"Doe^Jane")
REFERENCED_SERIES = 0x00081115
PIXEL_DATA = 0x7FE00010


def walk(data: bytes, *, implicit_vr: bool = False, limit: int = LIMIT) -> list[int]:
    layout = walk_dataset(
        data, 0, len(data), implicit_vr=implicit_vr, little_endian=True, max_element_length=limit
    )
    assert layout.end == len(data)
    return [header.tag for header in layout.elements]


def reason(data: bytes, **kwargs: object) -> str:
    with pytest.raises(IngestError) as caught:
        walk(data, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_top_level_elements_and_their_ends() -> None:
    seq = sequence(REFERENCED_SERIES, [item(PATIENT_NAME, undefined=True), item(PATIENT_NAME)])
    data = seq + PATIENT_NAME
    layout = walk_dataset(
        data, 0, len(data), implicit_vr=False, little_endian=True, max_element_length=LIMIT
    )
    first, second = layout.elements
    assert (first.tag, first.length, first.end) == (REFERENCED_SERIES, UNDEFINED_LENGTH, len(seq))
    assert (second.tag, second.vr, second.offset, second.end) == (
        0x00100010,
        "PN",
        len(seq),
        len(data),
    )


def test_defined_length_sequence_and_items() -> None:
    data = sequence(REFERENCED_SERIES, [item(PATIENT_NAME)] * 3, undefined=False)
    assert walk(data) == [REFERENCED_SERIES]


def test_encapsulated_pixel_data_fragments() -> None:
    fragments = item(b"") + item(b"\xff\xd8" * 10) + sequence_delimiter()
    data = element(PIXEL_DATA, "OB", fragments, length=UNDEFINED_LENGTH)
    assert walk(data) == [PIXEL_DATA]


def test_fragment_with_undefined_length_is_malformed() -> None:
    fragments = struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED_LENGTH) + sequence_delimiter()
    assert reason(element(PIXEL_DATA, "OB", fragments, length=UNDEFINED_LENGTH)) == "malformed"


def test_implicit_vr_sequence_is_walked_from_the_dictionary() -> None:
    inner = implicit_element(0x00100010, b"Doe^Jane")
    bad_item = struct.pack("<HHL", 0xFFFE, 0xE000, 100) + inner  # item longer than sequence
    data = implicit_element(REFERENCED_SERIES, bad_item) + implicit_element(0x00200010, b"S1")
    assert reason(data, implicit_vr=True) == "malformed"
    good = implicit_element(REFERENCED_SERIES, item(inner))
    assert walk(good, implicit_vr=True) == [REFERENCED_SERIES]


def test_four_gib_declared_length_is_oversized() -> None:
    data = PATIENT_NAME + element(0x00091010, "OB", b"\x00" * 16, length=0xFFFFFFF0)
    assert reason(data) == "oversized_element"


def test_declared_length_above_caller_limit_is_oversized() -> None:
    data = element(0x00091010, "OB", b"\x00" * 64)
    assert reason(data, limit=32) == "oversized_element"
    assert walk(data, limit=64) == [0x00091010]


def test_value_running_past_the_end_is_truncated() -> None:
    data = PATIENT_NAME + element(0x00091010, "OB", b"\x00" * 16, length=64)
    assert reason(data) == "truncated"


@pytest.mark.parametrize("cut", [1, 4, 7, 9, 11])
def test_header_cut_short_is_truncated(cut: int) -> None:
    data = PATIENT_NAME + element(0x00091010, "OB", b"\x00" * 16)
    assert reason(data[: len(PATIENT_NAME) + cut]) == "truncated"


def test_element_overrunning_its_item_is_malformed() -> None:
    overrun = element(0x00100010, "PN", b"Doe^Jane", length=40)
    data = sequence(REFERENCED_SERIES, [item(overrun)]) + bytes(64)
    assert reason(data) == "malformed"


def test_missing_sequence_delimiter_is_truncated() -> None:
    data = element(REFERENCED_SERIES, "SQ", item(PATIENT_NAME), length=UNDEFINED_LENGTH)
    assert reason(data) == "truncated"


@pytest.mark.parametrize(
    "data",
    [
        PATIENT_NAME + item_delimiter(),  # item delimiter at the top level
        PATIENT_NAME + sequence_delimiter(),
        struct.pack("<HH2sH", 0x0010, 0x0010, b"ZZ", 4) + b"Doe^",  # unknown VR
        struct.pack("<HH2sH", 0x0010, 0x0010, b"\x00\x01", 4) + b"Doe^",
        element(0x00100010, "OB", b"", length=UNDEFINED_LENGTH) + sequence_delimiter(),
        element(REFERENCED_SERIES, "SQ", PATIENT_NAME, length=UNDEFINED_LENGTH),  # no item
        sequence(REFERENCED_SERIES, [item(PATIENT_NAME)])[:-4] + b"\x04\x00\x00\x00",
    ],
    ids=[
        "top-item-delimiter",
        "top-sequence-delimiter",
        "unknown-vr",
        "binary-vr",
        "undefined-length-ob",
        "sequence-without-items",
        "delimiter-with-length",
    ],
)
def test_malformed_structures(data: bytes) -> None:
    assert reason(data) == "malformed"


def test_un_with_undefined_length_is_an_implicit_vr_sequence() -> None:
    inner = item(implicit_element(0x00100010, b"Doe^Jane"), undefined=True)
    data = element(0x00091010, "UN", inner + sequence_delimiter(), length=UNDEFINED_LENGTH)
    assert walk(data) == [0x00091010]


def _nested(depth: int) -> bytes:
    data = PATIENT_NAME
    for _ in range(depth):
        data = sequence(REFERENCED_SERIES, [item(data, undefined=True)])
    return data


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert walk(_nested(MAX_SEQUENCE_DEPTH)) == [REFERENCED_SERIES]


def test_nesting_beyond_the_limit_is_refused_without_recursion() -> None:
    assert reason(_nested(MAX_SEQUENCE_DEPTH + 1)) == "malformed"
    # Far deeper than Python's recursion limit: still a clean error.
    depth = 5000
    hostile = (
        element(REFERENCED_SERIES, "SQ", b"", length=UNDEFINED_LENGTH)
        + struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED_LENGTH)
    ) * depth
    assert reason(hostile) == "malformed"


def test_file_meta_walk_stops_at_the_first_dataset_element() -> None:
    meta = file_meta()
    data = meta + PATIENT_NAME
    layout = walk_file_meta(data, 0, max_element_length=LIMIT)
    assert layout.end == len(meta)
    assert [header.tag >> 16 for header in layout.elements] == [2] * 6


def test_big_endian_walk() -> None:
    data = struct.pack(">HH2sH", 0x0010, 0x0010, b"PN", 8) + b"Doe^Jane"
    layout = walk_dataset(
        data, 0, len(data), implicit_vr=False, little_endian=False, max_element_length=LIMIT
    )
    assert [header.tag for header in layout.elements] == [0x00100010]
    with pytest.raises(IngestError):
        walk_dataset(
            data, 0, len(data), implicit_vr=False, little_endian=True, max_element_length=LIMIT
        )
