"""DICOMweb tests run with small limits, so that oversize and bomb inputs stay cheap."""

from __future__ import annotations

import pytest

from server.settings import Settings

MAX_INSTANCE_BYTES = 1024 * 1024
MAX_STOW_BYTES = 4 * 1024 * 1024
MAX_INFLATED_BYTES = 4 * 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with archive limits a test can exceed quickly."""
    return settings.model_copy(
        update={
            "max_instance_bytes": MAX_INSTANCE_BYTES,
            "max_stow_bytes": MAX_STOW_BYTES,
            "max_inflated_bytes": MAX_INFLATED_BYTES,
        }
    )
