"""The signed report record: its format name, attachment name and canonical JSON bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RECORD_FORMAT = "doorstep-report/1"
ATTACHMENT_NAME = "report.json"


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The record's canonical bytes: sorted keys, no spaces, UTF-8; NaN and infinity refused."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
