"""The signed report record: its format name, attachment name and canonical JSON bytes."""

from __future__ import annotations

import asyncio
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


def refuse_running_loop(name: str) -> None:
    """RuntimeError when an event loop runs in this thread: pyHanko's calls run their own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name} runs pyHanko's own event loop; call it with asyncio.to_thread")
