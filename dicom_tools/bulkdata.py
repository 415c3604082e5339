"""Bulk data of a stored instance (PS3.18 10.4, bulkdata resources): the value at a BulkDataURI.

Paths are those of :mod:`dicom_tools.dicomjson`: ``TAG`` at the top level and
``SEQTAG/ITEM/TAG...`` inside sequences. Pixel Data goes as
:func:`dicom_tools.frames.stored_pixel_data` reads it (encapsulated: one part a
frame); other values as stored, byte-swapped to little endian words from a big
endian dataset. Every function blocks.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Literal

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicom_tools.byte_order import WORD_WIDTH, swapped
from dicom_tools.elements import PIXEL_DATA
from dicom_tools.errors import ReasonedError
from dicom_tools.frames import stored_pixel_data

PIXEL_DATA_PATH = f"{PIXEL_DATA:08X}"
"""The path of the top-level Pixel Data."""

_PATH = re.compile(r"[0-9A-F]{8}(?:/[0-9]{1,6}/[0-9A-F]{8}){0,16}")

BulkDataReason = Literal["no_such_bulk_data"]
"""Stable code of :class:`BulkDataError`: the path names no binary value of the instance."""


class BulkDataError(ReasonedError[BulkDataReason]):
    """There is no bulk data at the path (reading Pixel Data raises FrameError instead)."""


def is_bulk_data_path(path: str) -> bool:
    """Whether ``path`` has the form of a BulkDataURI path (not whether the instance has it)."""
    return _PATH.fullmatch(path) is not None


def bulk_data(source: BinaryIO, path: str, *, max_inflated_bytes: int) -> list[bytes]:
    """The value at a BulkDataURI path, as parts; encapsulated Pixel Data has one per frame."""
    if not is_bulk_data_path(path):
        raise BulkDataError("no_such_bulk_data", f"No bulk data at {path[:80]!r}.")
    if path == PIXEL_DATA_PATH:
        return stored_pixel_data(source, max_inflated_bytes=max_inflated_bytes)
    source.seek(0)
    ds = dcmread(source)
    current: Dataset = ds
    steps = path.split("/")
    try:
        for tag, index in zip(steps[:-2:2], steps[1:-1:2], strict=True):
            current = current[int(tag, 16)].value[int(index)]
        found = current[int(steps[-1], 16)]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BulkDataError("no_such_bulk_data", f"No bulk data at {path}.") from None
    if not isinstance(found.value, bytes):
        raise BulkDataError("no_such_bulk_data", f"No bulk data at {path}.")
    width = WORD_WIDTH.get(found.VR)
    if not UID(ds.file_meta.TransferSyntaxUID).is_little_endian and width:
        return [swapped(found.value, width)]
    return [found.value]
