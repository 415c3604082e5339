"""The DIMSE status dataset; the codes are dicom_tools.status's, per service class."""

from __future__ import annotations

from pydicom.dataset import Dataset

_ERROR_COMMENT_LENGTH = 64


def status(code: int, comment: str = "") -> Dataset:
    """A status dataset; a failure carries an Error Comment (LO, at most 64 characters)."""
    ds = Dataset()
    ds.Status = int(code)
    if comment:
        ds.ErrorComment = comment.replace("\\", "/")[:_ERROR_COMMENT_LENGTH]
    return ds
