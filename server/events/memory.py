"""The in-process event bus: the embedded default, one server process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.events.bus import EventBus, decode_payload, encode_payload


class InProcessEventBus(EventBus):
    """Event bus whose publishers and subscribers share one process."""

    async def start(self) -> None:
        """Nothing to acquire; refuses a closed bus."""
        self._check_open()

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        """Deliver `event` to this process's subscribers of `channel`."""
        self._check_open()
        # The JSON round trip validates and gives subscribers a copy, as PostgreSQL would.
        self._fan_out(decode_payload(encode_payload(channel, event)))
