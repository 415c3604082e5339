"""The 128-byte Part 10 preamble (PS3.10 7.1) and CVE-2019-11687 polyglot files.

PS3.10 lets the preamble hold anything, which lets a valid DICOM file also be a
valid Windows PE or ELF executable. The archive keeps only preambles that are all
zero or start with a TIFF header (dual-personality DICOM/TIFF, PS3.10 7.5) and
zeroes every other preamble before storing the file.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from dicom_tools.errors import IngestError

PREAMBLE_LENGTH = 128
DICM_PREFIX = b"DICM"
DATASET_OFFSET = PREAMBLE_LENGTH + len(DICM_PREFIX)

PreambleKind = Literal["zero", "tiff", "executable", "other"]
"""``zero`` and ``tiff`` are kept; ``executable`` and ``other`` are neutralised."""

_ZERO_PREAMBLE = bytes(PREAMBLE_LENGTH)
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
_EXECUTABLE_MAGICS = (
    b"MZ",  # DOS / Windows PE
    b"\x7fELF",  # ELF (Linux, BSD)
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit, big endian
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit, big endian
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit, little endian
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit, little endian
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary
    b"#!",  # script with an interpreter line
)


class NeutralisedPreamble(NamedTuple):
    """Part 10 bytes safe to store, whether the preamble was zeroed, and what it held."""

    data: bytes
    neutralised: bool
    kind: PreambleKind


def classify_preamble(preamble: bytes) -> PreambleKind:
    """Return what a 128-byte preamble holds: zeros, a TIFF header, an executable, or other."""
    if len(preamble) != PREAMBLE_LENGTH:
        raise ValueError(f"a preamble is {PREAMBLE_LENGTH} bytes, got {len(preamble)}")
    if preamble == _ZERO_PREAMBLE:
        return "zero"
    if preamble.startswith(_TIFF_HEADERS):
        return "tiff"
    if preamble.startswith(_EXECUTABLE_MAGICS):
        return "executable"
    return "other"


def preamble_is_kept(kind: PreambleKind) -> bool:
    """Return whether a preamble of this kind is stored as it is."""
    return kind in ("zero", "tiff")


def neutralise_preamble(data: bytes) -> NeutralisedPreamble:
    """Return ``data`` with a non-zero, non-TIFF preamble zeroed; every other byte is unchanged."""
    if len(data) < DATASET_OFFSET or data[PREAMBLE_LENGTH:DATASET_OFFSET] != DICM_PREFIX:
        raise IngestError("not_dicom", "no DICM prefix at offset 128; not a DICOM Part 10 file")
    kind = classify_preamble(data[:PREAMBLE_LENGTH])
    if preamble_is_kept(kind):
        return NeutralisedPreamble(data, False, kind)
    return NeutralisedPreamble(_ZERO_PREAMBLE + data[PREAMBLE_LENGTH:], True, kind)
