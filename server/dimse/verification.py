"""Verification Service Class (PS3.4 Annex A): C-ECHO."""

from __future__ import annotations

from typing import Any

from dicom_tools.status import GeneralStatus


def handle_echo(event: Any) -> int:
    """EVT_C_ECHO: an admitted peer is always answered with success."""
    return GeneralStatus.SUCCESS
