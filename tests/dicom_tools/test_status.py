"""Status codes per service class agree with pynetdicom's tables and the standard's ranges."""

from __future__ import annotations

from enum import IntEnum
from typing import get_args

import pytest
from pynetdicom.status import (
    GENERAL_STATUS,
    QR_FIND_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
)

from dicom_tools.errors import INGEST_REASONS
from dicom_tools.status import (
    STORE_FAILURES,
    ArchiveReason,
    FindStatus,
    GeneralStatus,
    StorageStatus,
    StoreInstancesFailure,
    store_failure_status,
)

# PS3.18 Table I.2-2, ranges included.
_STOW_FAILURE_RANGES = [range(0xA700, 0xA800), range(0xA900, 0xAA00), range(0xC000, 0xD000)]


@pytest.mark.parametrize(
    ("codes", "table"),
    [
        (GeneralStatus, GENERAL_STATUS | {0xFF00: ("Pending", "")}),
        (StorageStatus, STORAGE_SERVICE_CLASS_STATUS),
        (FindStatus, QR_FIND_SERVICE_CLASS_STATUS),
    ],
    ids=["general", "storage", "find"],
)
def test_each_code_is_one_pynetdicom_knows_for_its_service_class(
    codes: type[IntEnum], table: dict[int, tuple[str, str]]
) -> None:
    assert [code for code in codes if code not in table] == []


def test_every_store_failure_reason_has_a_status() -> None:
    assert set(STORE_FAILURES) == INGEST_REASONS | set(get_args(ArchiveReason))


@pytest.mark.parametrize("reason", sorted(STORE_FAILURES))
def test_each_store_failure_status_is_valid_for_c_store_and_stow_rs(reason: str) -> None:
    code = store_failure_status(reason)
    category, _ = STORAGE_SERVICE_CLASS_STATUS[code]
    assert category == "Failure"
    in_stow_table = code in set(StoreInstancesFailure) or any(
        code in codes for codes in _STOW_FAILURE_RANGES
    )
    # PS3.18 I.2.2 allows additional codes; Doorstep adds only Duplicate SOP Instance.
    assert in_stow_table or code == GeneralStatus.DUPLICATE_SOP_INSTANCE


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("out_of_resources", 0xA700),  # disk full: Refused: Out of Resources
        ("storage", 0x0110),  # another I/O error: Processing Failure
        ("too_large", 0xA700),
        ("inflated_too_large", 0xA700),
        ("truncated", 0xC000),
        ("unsupported_transfer_syntax", 0xC122),
        ("meta_mismatch", 0xA900),
        ("study_mismatch", 0xA900),
        ("conflict", 0x0111),
        ("no such reason", 0x0110),
        (None, 0x0110),
    ],
)
def test_store_failure_status(reason: str | None, code: int) -> None:
    assert store_failure_status(reason) == code
