"""Errors of dicom_tools: each carries a stable machine-readable reason and a message for people."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar, get_args

R = TypeVar("R", bound=str)


class ReasonedError(Exception, Generic[R]):
    """A refusal with a stable code (``reason``) that callers map to statuses, and a message."""

    def __init__(self, reason: R, message: str) -> None:
        super().__init__(message)
        self.reason: R = reason
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


IngestReason = Literal[
    "not_dicom",
    "missing_file_meta",
    "truncated",
    "oversized_element",
    "malformed",
    "unsupported_transfer_syntax",
    "inflated_too_large",
    "too_large",
    "missing_attribute",
    "invalid_uid",
    "invalid_attribute",
    "meta_mismatch",
    "executable_preamble",
]
"""Stable codes; callers map them to HTTP statuses and DIMSE failure statuses.

- ``not_dicom``: no ``DICM`` prefix at offset 128 and not a recognisable dataset.
- ``missing_file_meta``: a raw dataset, or ``DICM`` with no File Meta elements.
- ``truncated``: the data ends inside an element header or value.
- ``oversized_element``: a declared value length exceeds the element limit.
- ``malformed``: the encoding is inconsistent (bad VR, overrunning item, stray delimiter...).
- ``unsupported_transfer_syntax``: a private or unknown Transfer Syntax UID.
- ``inflated_too_large``: a deflated dataset inflates beyond the configured limit.
- ``too_large``: the whole stream exceeds ``max_bytes``.
- ``missing_attribute``: a required attribute is absent or empty.
- ``invalid_uid``: a UID is not digits and dots per PS3.5 9.1.
- ``invalid_attribute``: an index attribute has an unusable value.
- ``meta_mismatch``: File Meta disagrees with the dataset (SOP Instance/Class UID).
- ``executable_preamble``: the preamble is an executable header and the caller asked to reject.
"""

INGEST_REASONS: frozenset[str] = frozenset(get_args(IngestReason))


class IngestError(ReasonedError[IngestReason]):
    """A DICOM stream was refused; ``attribute`` names the offending attribute when one does."""

    def __init__(self, reason: IngestReason, message: str, *, attribute: str | None = None) -> None:
        super().__init__(reason, message)
        self.attribute = attribute
