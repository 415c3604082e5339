"""UID syntax of PS3.5 9.1: digit components separated by dots, at most 64 characters."""

from __future__ import annotations

import re

from dicom_tools.errors import IngestError

UID_MAX_LENGTH = 64

# [0-9], not \d: \d also matches non-ASCII digits.
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def is_valid_uid(value: str) -> bool:
    """Return whether ``value`` is a syntactically valid UID (PS3.5 9.1)."""
    return 0 < len(value) <= UID_MAX_LENGTH and _UID.fullmatch(value) is not None


def validate_uid(value: str, *, attribute: str) -> str:
    """Return ``value`` unchanged, or raise ``IngestError("invalid_uid")`` naming ``attribute``."""
    if not is_valid_uid(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise IngestError(
            "invalid_uid",
            f"{attribute} is not a valid UID (digits and dots, at most 64 characters): {shown!r}",
            attribute=attribute,
        )
    return value
