"""Walk the data element encoding of PS3.5 7 and check every declared length, reading no values.

The walk runs before pydicom sees a stream, so that a declared length that does
not fit (a 4 GiB value in a 1 KiB file, an item that overruns its sequence, a
missing delimiter) is refused up front and never turns into an allocation, a
seek past the end or an exception from deep inside a parser. It is iterative,
so hostile nesting cannot exhaust the Python stack.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from struct import Struct

from pydicom.datadict import dictionary_VR

from dicom_tools.errors import IngestError

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITATION = 0xFFFEE00D
SEQUENCE_DELIMITATION = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
PIXEL_DATA_TAGS = frozenset({FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA, PIXEL_DATA})
"""The three attributes that hold an image's pixels (PS3.3 C.7.6.3)."""
FILE_META_GROUP = 0x0002

MAX_SEQUENCE_DEPTH = 32
"""Deepest sequence nesting accepted; real data (SR trees, RT structures) stays far below."""

MAX_ELEMENT_LENGTH = 2**31 - 1
"""Largest declared value length accepted when the caller gives no tighter limit."""

# PS3.5 Table 7.1-1: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_SHORT_VRS = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO",
        b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip

_VR_NAMES = {vr: vr.decode("ascii") for vr in _LONG_VRS | _SHORT_VRS}

_DATASET = 0
_SEQUENCE = 1
_FRAGMENTS = 2

Buffer = bytes | mmap.mmap


@dataclass(frozen=True, slots=True)
class ElementHeader:
    """A top-level data element: tag, explicit VR (None if implicit) and where it lies."""

    tag: int
    vr: str | None
    offset: int
    value_offset: int
    length: int  # as declared; UNDEFINED_LENGTH for a delimited value
    end: int  # just past the value, including any items, fragments and delimiters


@dataclass(frozen=True, slots=True)
class DatasetLayout:
    """The top-level elements of a walked dataset and the offset where the walk stopped."""

    elements: tuple[ElementHeader, ...]
    end: int


@dataclass(slots=True)
class _Frame:
    kind: int
    end: int | None  # None: undefined length, closed by a delimiter
    limit: int  # nothing inside may extend past this offset
    implicit_vr: bool


def walk_file_meta(data: Buffer, start: int, *, max_element_length: int) -> DatasetLayout:
    """Walk the group 0002 elements (always Explicit VR Little Endian) from ``start``."""
    return _Walker(data, start, len(data), True, max_element_length).walk(
        implicit_vr=False, stop_unless_group=FILE_META_GROUP
    )


def walk_dataset(
    data: Buffer,
    start: int,
    end: int,
    *,
    implicit_vr: bool,
    little_endian: bool,
    max_element_length: int,
) -> DatasetLayout:
    """Walk every element, item and fragment in ``data[start:end]`` and check their lengths."""
    return _Walker(data, start, end, little_endian, max_element_length).walk(
        implicit_vr=implicit_vr, stop_unless_group=None
    )


def _is_sequence_tag(tag: int) -> bool:
    """Return whether the data dictionary says ``tag`` is a sequence (for implicit VR)."""
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Walker:
    def __init__(
        self, data: Buffer, start: int, end: int, little_endian: bool, max_element_length: int
    ) -> None:
        if not 0 <= start <= end <= len(data):
            raise ValueError("walk bounds outside the data")
        self.data = data
        self.start = start
        self.data_end = end
        self.max_element_length = max_element_length
        prefix = "<" if little_endian else ">"
        self.tag_length = Struct(prefix + "HHL")
        self.vr_short_length = Struct(prefix + "2sH")
        self.long_length = Struct(prefix + "L")

    def walk(self, *, implicit_vr: bool, stop_unless_group: int | None) -> DatasetLayout:
        top: list[ElementHeader] = []
        pending: tuple[int, str | None, int, int, int] | None = None
        stack = [_Frame(_DATASET, self.data_end, self.data_end, implicit_vr)]
        pos = self.start
        while stack:
            frame = stack[-1]
            if pending is not None and len(stack) == 1:
                top.append(ElementHeader(*pending, end=pos))
                pending = None
            if frame.end is not None and pos == frame.end:
                stack.pop()
            elif frame.kind == _SEQUENCE:
                pos = self._sequence_item(frame, pos, stack)
            elif frame.kind == _FRAGMENTS:
                pos = self._fragment(frame, pos, stack)
            else:
                at_top = len(stack) == 1
                if at_top and stop_unless_group is not None:
                    self._need(pos, 8, frame, "an element header")
                    if self.tag_length.unpack_from(self.data, pos)[0] != stop_unless_group:
                        break
                header, pos = self._element(frame, pos, stack)
                if at_top:
                    pending = header
        return DatasetLayout(tuple(top), pos)

    def _element(
        self, frame: _Frame, pos: int, stack: list[_Frame]
    ) -> tuple[tuple[int, str | None, int, int, int] | None, int]:
        """Check one element, push a frame for its contents, return it and the next offset."""
        self._need(pos, 8, frame, "an element header")
        tag, length = self._tag_and_length(pos)
        if tag >> 16 == 0xFFFE:
            # Item tags carry no VR in any transfer syntax (PS3.5 7.5).
            if tag == ITEM_DELIMITATION and frame.end is None and len(stack) > 1:
                return None, self._close(length, pos, stack, "item")
            raise IngestError("malformed", f"unexpected {_tag_text(tag)} at offset {pos}")
        vr: str | None = None
        header_length = 8
        if not frame.implicit_vr:
            vr_bytes, length = self.vr_short_length.unpack_from(self.data, pos + 4)
            vr = _VR_NAMES.get(vr_bytes)
            if vr is None:
                raise IngestError(
                    "malformed", f"invalid VR {vr_bytes!r} for {_tag_text(tag)} at offset {pos}"
                )
            if vr_bytes in _LONG_VRS:
                self._need(pos, 12, frame, "an element header")
                length = self.long_length.unpack_from(self.data, pos + 8)[0]
                header_length = 12
        value_offset = pos + header_length
        header = (tag, vr, pos, value_offset, length)
        if length == UNDEFINED_LENGTH:
            if tag == PIXEL_DATA and vr in (None, "OB", "OW"):
                stack.append(_Frame(_FRAGMENTS, None, frame.limit, frame.implicit_vr))
            elif vr in (None, "SQ", "UN"):
                # PS3.5 6.2.2: a UN value of undefined length is an implicit VR sequence.
                implicit = frame.implicit_vr or vr == "UN"
                self._push_sequence(stack, None, frame.limit, implicit, pos)
            else:
                raise IngestError(
                    "malformed",
                    f"{_tag_text(tag)} with VR {vr} has undefined length at offset {pos}",
                )
            return header, value_offset
        self._check_value(frame, tag, value_offset, length)
        if vr == "SQ" or (vr is None and _is_sequence_tag(tag)):
            end = value_offset + length
            self._push_sequence(stack, end, end, frame.implicit_vr, pos)
            return header, value_offset
        return header, value_offset + length

    def _sequence_item(self, frame: _Frame, pos: int, stack: list[_Frame]) -> int:
        self._need(pos, 8, frame, "an item header")
        tag, length = self._tag_and_length(pos)
        if tag == ITEM:
            if length == UNDEFINED_LENGTH:
                stack.append(_Frame(_DATASET, None, frame.limit, frame.implicit_vr))
            else:
                self._check_value(frame, tag, pos + 8, length)
                end = pos + 8 + length
                stack.append(_Frame(_DATASET, end, end, frame.implicit_vr))
            return pos + 8
        if tag == SEQUENCE_DELIMITATION and frame.end is None:
            return self._close(length, pos, stack, "sequence")
        raise IngestError("malformed", f"expected an item in a sequence at offset {pos}")

    def _fragment(self, frame: _Frame, pos: int, stack: list[_Frame]) -> int:
        self._need(pos, 8, frame, "a fragment header")
        tag, length = self._tag_and_length(pos)
        if tag == ITEM and length != UNDEFINED_LENGTH:
            self._check_value(frame, tag, pos + 8, length)
            return pos + 8 + length
        if tag == SEQUENCE_DELIMITATION:
            return self._close(length, pos, stack, "sequence")
        raise IngestError(
            "malformed", f"expected a defined-length pixel data fragment at offset {pos}"
        )

    def _tag_and_length(self, pos: int) -> tuple[int, int]:
        group: int
        element: int
        length: int
        group, element, length = self.tag_length.unpack_from(self.data, pos)
        return group << 16 | element, length

    @staticmethod
    def _close(length: int, pos: int, stack: list[_Frame], what: str) -> int:
        if length != 0:
            raise IngestError("malformed", f"{what} delimiter at offset {pos} has length {length}")
        stack.pop()
        return pos + 8

    @staticmethod
    def _push_sequence(
        stack: list[_Frame], end: int | None, limit: int, implicit_vr: bool, pos: int
    ) -> None:
        # Each nesting level adds a sequence frame and an item frame.
        if len(stack) >= 2 * MAX_SEQUENCE_DEPTH + 1:
            raise IngestError(
                "malformed",
                f"sequences nest deeper than {MAX_SEQUENCE_DEPTH} levels at offset {pos}",
            )
        stack.append(_Frame(_SEQUENCE, end, limit, implicit_vr))

    def _check_value(self, frame: _Frame, tag: int, value_offset: int, length: int) -> None:
        if length > self.max_element_length:
            raise IngestError(
                "oversized_element",
                f"{_tag_text(tag)} at offset {value_offset} declares {length} bytes, "
                f"more than the limit of {self.max_element_length}",
            )
        if value_offset + length > frame.limit:
            raise self._overrun(frame, value_offset, f"the value of {_tag_text(tag)}")

    def _need(self, pos: int, size: int, frame: _Frame, what: str) -> None:
        if pos + size > frame.limit:
            raise self._overrun(frame, pos, what)

    def _overrun(self, frame: _Frame, pos: int, what: str) -> IngestError:
        if frame.limit == self.data_end:
            return IngestError("truncated", f"the data ends inside {what} at offset {pos}")
        return IngestError(
            "malformed", f"{what} at offset {pos} runs past the end of its item or sequence"
        )
