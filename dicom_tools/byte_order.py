"""Byte order of binary values: big endian words turned little endian (PS3.5 7.3)."""

from __future__ import annotations

from array import array

WORD_WIDTH = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
"""Bytes per word of the binary VRs whose value is swapped between byte orders."""

_ARRAY_CODE = {2: "H", 4: "I", 8: "Q"}


def swapped(value: bytes, width: int) -> bytes:
    """value with every width-byte word reversed; a trailing partial word is kept as it is."""
    words = array(_ARRAY_CODE[width])
    usable = len(value) - len(value) % width
    words.frombytes(value[:usable])
    words.byteswap()
    return words.tobytes() + value[usable:]
