"""Byte-level builders for crafted Part 10 streams (explicit VR little endian unless told)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pydicom.data import get_testdata_file

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}

SOP_INSTANCE_UID = "1.2.826.0.1.3680043.8.498.1"
STUDY_UID = "1.2.826.0.1.3680043.8.498.2"
SERIES_UID = "1.2.826.0.1.3680043.8.498.3"


def bundled(name: str) -> Path:
    """Return the path of a pydicom bundled test file, never downloading."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} is not installed"
    return Path(path)


def pad(value: bytes, vr: str) -> bytes:
    """Pad a value to even length the way PS3.5 6.2 says for its VR."""
    if len(value) % 2 == 0:
        return value
    return value + (b"\x00" if vr in ("UI", "OB", "UN") else b" ")


def element(tag: int, vr: str, value: bytes, *, length: int | None = None) -> bytes:
    """Encode one explicit VR little endian element; ``length`` overrides the declared length."""
    if length is None:
        value = pad(value, vr)
        length = len(value)
    head = struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, vr.encode())
    if vr in _LONG_VRS:
        return head + b"\x00\x00" + struct.pack("<L", length) + value
    return head + struct.pack("<H", length) + value


def implicit_element(tag: int, value: bytes, *, length: int | None = None) -> bytes:
    """Encode one implicit VR little endian element."""
    value = pad(value, "UI") if length is None else value
    declared = len(value) if length is None else length
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, declared) + value


def item(content: bytes, *, undefined: bool = False) -> bytes:
    """Encode a sequence item, with a defined length or closed by an item delimiter."""
    if undefined:
        return struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED) + content + item_delimiter()
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(content)) + content


def item_delimiter() -> bytes:
    return struct.pack("<HHL", 0xFFFE, 0xE00D, 0)


def sequence_delimiter() -> bytes:
    return struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def sequence(tag: int, items: list[bytes], *, undefined: bool = True) -> bytes:
    """Encode an SQ element holding already-encoded items."""
    body = b"".join(items)
    if undefined:
        return element(tag, "SQ", body + sequence_delimiter(), length=UNDEFINED)
    return element(tag, "SQ", body)


def file_meta(
    *,
    transfer_syntax: str = EXPLICIT_LE,
    sop_instance_uid: str = SOP_INSTANCE_UID,
    sop_class_uid: str = CT_IMAGE_STORAGE,
) -> bytes:
    """Encode File Meta Information (group 0002) with its group length."""
    body = (
        element(0x00020001, "OB", b"\x00\x01")
        + element(0x00020002, "UI", sop_class_uid.encode())
        + element(0x00020003, "UI", sop_instance_uid.encode())
        + element(0x00020010, "UI", transfer_syntax.encode())
        + element(0x00020012, "UI", b"1.2.826.0.1.3680043.8.498.99")
    )
    return element(0x00020000, "UL", struct.pack("<L", len(body))) + body


PIXEL_DATA = 0x7FE00010


def dataset(
    *,
    omit: tuple[int, ...] = (),
    replace: dict[int, bytes] | None = None,
    extra: dict[int, tuple[str, bytes]] | None = None,
) -> bytes:
    """Encode a small valid CT dataset in tag order, ending with a 2-byte Pixel Data."""
    values: dict[int, tuple[str, bytes]] = {
        0x00080016: ("UI", CT_IMAGE_STORAGE.encode()),
        0x00080018: ("UI", SOP_INSTANCE_UID.encode()),
        0x00080020: ("DA", b"20240131"),
        0x00080060: ("CS", b"CT"),
        0x00100010: ("PN", b"Doe^Jane"),
        0x00100020: ("LO", b"P-0001"),
        0x0020000D: ("UI", STUDY_UID.encode()),
        0x0020000E: ("UI", SERIES_UID.encode()),
        0x00200013: ("IS", b"7"),
        PIXEL_DATA: ("OB", b"\x00\x00"),
    }
    for tag, value in (replace or {}).items():
        values[tag] = (values[tag][0], value)
    values.update(extra or {})
    return b"".join(
        element(tag, vr, value) for tag, (vr, value) in sorted(values.items()) if tag not in omit
    )


def part10(
    body: bytes,
    *,
    transfer_syntax: str = EXPLICIT_LE,
    preamble: bytes = bytes(128),
    sop_instance_uid: str = SOP_INSTANCE_UID,
    sop_class_uid: str = CT_IMAGE_STORAGE,
) -> bytes:
    """Wrap an encoded dataset in preamble, DICM prefix and File Meta Information."""
    assert len(preamble) == 128
    meta = file_meta(
        transfer_syntax=transfer_syntax,
        sop_instance_uid=sop_instance_uid,
        sop_class_uid=sop_class_uid,
    )
    return preamble + b"DICM" + meta + body


def raw_deflate(data: bytes) -> bytes:
    """Deflate without zlib header or trailer, as PS3.5 A.5 requires."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def deflated_with_zeros(prefix: bytes, zeros: int, suffix: bytes = b"", *, level: int = 9) -> bytes:
    """Return a raw deflate stream of ``prefix``, ``zeros`` zero bytes, then ``suffix``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(prefix)]
    remaining = zeros
    while remaining:
        size = min(remaining, len(chunk))
        parts.append(compressor.compress(chunk[:size]))
        remaining -= size
    parts.append(compressor.compress(suffix))
    parts.append(compressor.flush())
    return b"".join(parts)


def deflate_bomb(inflated_size: int) -> bytes:
    """Return a raw deflate stream of zeros that inflates to ``inflated_size`` bytes."""
    return deflated_with_zeros(b"", inflated_size)
