"""DIMSE status codes (PS3.7 Annex C, PS3.4 B.2.3 and C.4.1.1.4) and the status dataset."""

from __future__ import annotations

from pydicom.dataset import Dataset

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NOT_AUTHORISED = 0x0124
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000

_ERROR_COMMENT_LENGTH = 64


def status(code: int, comment: str = "") -> Dataset:
    """A status dataset; a failure carries an Error Comment (LO, at most 64 characters)."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment.replace("\\", "/")[:_ERROR_COMMENT_LENGTH]
    return ds
