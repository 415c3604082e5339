"""Archive store results map to the C-STORE statuses of PS3.4 B.2.3 and PS3.7 C."""

from __future__ import annotations

import pytest

from server.archive.service import Outcome, StoreResult
from server.dimse.storage import store_status


@pytest.mark.parametrize(
    ("outcome", "reason", "status"),
    [
        ("stored", None, 0x0000),
        ("duplicate", None, 0x0000),
        ("replaced", None, 0x0000),
        ("conflict", "conflict", 0x0111),
        ("rejected", "meta_mismatch", 0xA900),
        ("rejected", "missing_attribute", 0xA900),
        ("rejected", "truncated", 0xC000),
        ("rejected", "not_dicom", 0xC000),
        ("rejected", "too_large", 0xA700),
        ("failed", "out_of_resources", 0xA700),
        ("failed", "storage", 0xA700),
        ("failed", None, 0x0110),
    ],
)
def test_store_status(outcome: Outcome, reason: str | None, status: int) -> None:
    found = store_status(StoreResult(outcome=outcome, reason=reason, message="why"))
    assert found.Status == status
    assert ("ErrorComment" in found) is (status != 0x0000)
