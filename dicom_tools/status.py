"""Status codes of the services Doorstep provides, per service class as the standard names them.

Modelled on ``pynetdicom.status``: the general statuses of PS3.7 Annex C, then
those a service class adds (PS3.4 B.2.3 for C-STORE, C.4.1.1.4 for C-FIND) and
the Failure Reason values of a STOW-RS response (PS3.18 I.2.2). Where the
standard gives a range (A7xx, A9xx, Cxxx), the constant is the code Doorstep
sends, the first of the range.

:data:`STORE_FAILURES` is the one table from why an instance was not stored to
the status that says so; STOW-RS puts it in Failure Reason (0008,1197) and
C-STORE in the response Status (0000,0900), so the two always agree. Its codes
are valid for both: the C-STORE statuses and general statuses it uses are, or
fall in the ranges of, PS3.18 Table I.2-2 and its "additional codes".
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Literal

from dicom_tools.errors import IngestReason


class GeneralStatus(IntEnum):
    """PS3.7 Annex C: statuses any DIMSE service may return."""

    SUCCESS = 0x0000
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PROCESSING_FAILURE = 0x0110
    """Failure: a general failure in processing the operation was encountered."""
    DUPLICATE_SOP_INSTANCE = 0x0111
    REFUSED_NOT_AUTHORIZED = 0x0124


class StorageStatus(IntEnum):
    """PS3.4 B.2.3 Table B.2-1: the C-STORE statuses of the Storage Service Class."""

    REFUSED_OUT_OF_RESOURCES = 0xA700
    """Failure, A7xx."""
    ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    """Failure, A9xx."""
    ERROR_CANNOT_UNDERSTAND = 0xC000
    """Failure, Cxxx."""
    WARNING_COERCION_OF_DATA_ELEMENTS = 0xB000
    WARNING_ELEMENTS_DISCARDED = 0xB006
    WARNING_DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007


class FindStatus(IntEnum):
    """PS3.4 C.4.1.1.4 Table C.4-1: the C-FIND statuses of the Query/Retrieve Service Class."""

    REFUSED_OUT_OF_RESOURCES = 0xA700
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    """Failure, Cxxx."""
    MATCHING_TERMINATED_DUE_TO_CANCEL = 0xFE00
    PENDING = 0xFF00
    """Matches are continuing; the current match is supplied."""
    PENDING_OPTIONAL_KEYS_NOT_SUPPORTED = 0xFF01


class StoreInstancesFailure(IntEnum):
    """PS3.18 I.2.2 Table I.2-2: Failure Reason (0008,1197) of a STOW-RS response."""

    REFUSED_OUT_OF_RESOURCES = 0xA700
    ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    ERROR_CANNOT_UNDERSTAND = 0xC000
    REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    PROCESSING_FAILURE = 0x0110
    REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122


ArchiveReason = Literal["study_mismatch", "conflict", "out_of_resources", "storage"]
"""Why the archive did not store an instance that passed ingest validation:

- ``study_mismatch``: the instance is not of the study the request stores into.
- ``conflict``: the SOP Instance UID is stored already, with other bytes.
- ``out_of_resources``: the disk is full or over quota (ENOSPC, EDQUOT).
- ``storage``: any other failure to write the instance (EIO...).
"""

StoreFailureReason = IngestReason | ArchiveReason
"""Why an instance was not stored: refused by ingest validation, or by the archive."""

_OUT_OF_RESOURCES = StorageStatus.REFUSED_OUT_OF_RESOURCES
_DOES_NOT_MATCH = StorageStatus.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS
_CANNOT_UNDERSTAND = StorageStatus.ERROR_CANNOT_UNDERSTAND

STORE_FAILURES: Mapping[str, int] = {
    "not_dicom": _CANNOT_UNDERSTAND,
    "missing_file_meta": _CANNOT_UNDERSTAND,
    "truncated": _CANNOT_UNDERSTAND,
    "oversized_element": _CANNOT_UNDERSTAND,
    "malformed": _CANNOT_UNDERSTAND,
    "executable_preamble": _CANNOT_UNDERSTAND,
    # C122 is a Cxxx code, so a C-STORE SCU reads it as Error: Cannot understand.
    "unsupported_transfer_syntax": StoreInstancesFailure.REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED,
    "missing_attribute": _DOES_NOT_MATCH,
    "invalid_uid": _DOES_NOT_MATCH,
    "invalid_attribute": _DOES_NOT_MATCH,
    "meta_mismatch": _DOES_NOT_MATCH,
    "study_mismatch": _DOES_NOT_MATCH,
    "too_large": _OUT_OF_RESOURCES,
    "inflated_too_large": _OUT_OF_RESOURCES,
    "conflict": GeneralStatus.DUPLICATE_SOP_INSTANCE,
    # A disk that is full is Refused: Out of Resources (PS3.4 Table B.2-1, A7xx): the SCP
    # lacks the resources to store the instance now, and a retry later may succeed. Any
    # other I/O error is no shortage of resources but a failure of the SCP itself, which
    # the standard calls Processing Failure (PS3.7 Annex C 0110H, PS3.18 Table I.2-2).
    "out_of_resources": _OUT_OF_RESOURCES,
    "storage": GeneralStatus.PROCESSING_FAILURE,
}
"""The status of each :data:`StoreFailureReason`, for STOW-RS and C-STORE alike."""


def store_failure_status(reason: str | None) -> int:
    """The status of a store failure; Processing Failure for a reason the table lacks."""
    if reason is None:
        return GeneralStatus.PROCESSING_FAILURE
    return STORE_FAILURES.get(reason, GeneralStatus.PROCESSING_FAILURE)
