"""How a dataset is encoded under each accepted Transfer Syntax (PS3.5 10 and Annex A)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

from dicom_tools.errors import IngestError

# The UIDs are pydicom's constants (pydicom.uid); it has none for this one.
JPIP_REFERENCED_DEFLATE = UID("1.2.840.10008.1.2.4.95")

# pydicom's UID.is_deflated only knows Deflated Explicit VR Little Endian.
_DEFLATED = frozenset({DeflatedExplicitVRLittleEndian, JPIP_REFERENCED_DEFLATE})


@dataclass(frozen=True, slots=True)
class DatasetEncoding:
    """The byte encoding of the dataset that follows the File Meta Information."""

    implicit_vr: bool
    little_endian: bool
    deflated: bool


def dataset_encoding(transfer_syntax_uid: str) -> DatasetEncoding:
    """Return the encoding for a standard Transfer Syntax UID, or raise for others."""
    uid = UID(transfer_syntax_uid)
    if uid.is_private or not uid.is_transfer_syntax:
        raise IngestError(
            "unsupported_transfer_syntax",
            f"Transfer Syntax UID {transfer_syntax_uid!r} is not a standard transfer syntax",
            attribute="TransferSyntaxUID",
        )
    return DatasetEncoding(
        implicit_vr=transfer_syntax_uid == ImplicitVRLittleEndian,
        little_endian=transfer_syntax_uid != ExplicitVRBigEndian,
        deflated=transfer_syntax_uid in _DEFLATED,
    )
