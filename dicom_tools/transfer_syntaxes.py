"""How a dataset is encoded under each accepted Transfer Syntax (PS3.5 10 and Annex A)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID

from dicom_tools.errors import IngestError

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
JPIP_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.95"

# pydicom's UID.is_deflated only knows 1.2.840.10008.1.2.1.99.
_DEFLATED = frozenset({DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, JPIP_REFERENCED_DEFLATE})


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
        implicit_vr=transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN,
        little_endian=transfer_syntax_uid != EXPLICIT_VR_BIG_ENDIAN,
        deflated=transfer_syntax_uid in _DEFLATED,
    )
