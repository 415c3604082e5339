"""The real-time event bus interface and the local fan-out shared by every implementation."""

from __future__ import annotations

import abc
import asyncio
import collections
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

MAX_PAYLOAD_BYTES = 7000
"""Largest encoded event envelope; PostgreSQL NOTIFY refuses payloads of 8000 bytes or more."""

DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event received on one channel."""

    channel: str
    event: dict[str, Any]


def encode_payload(channel: str, event: Mapping[str, Any]) -> str:
    """Return the JSON envelope `{"c": channel, "e": event}`; ValueError if invalid or too big."""
    if not isinstance(channel, str) or not channel:
        raise ValueError("channel must be a non-empty string")
    try:
        payload = json.dumps(
            {"c": channel, "e": dict(event)},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event is not JSON-serialisable: {exc}") from exc
    size = len(payload.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"encoded event is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return payload


def decode_payload(payload: str) -> Delivery:
    """Parse an envelope made by `encode_payload`; ValueError if it is not one."""
    data = json.loads(payload)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("c"), str)
        or not isinstance(data.get("e"), dict)
    ):
        raise ValueError("not an event envelope")
    return Delivery(channel=data["c"], event=data["e"])


class Subscription:
    """Bounded, drop-oldest stream of deliveries; iterate it inside `async with`."""

    def __init__(self, bus: EventBus, channels: frozenset[str], maxsize: int) -> None:
        self.channels = channels
        self.dropped = 0
        self._bus = bus
        self._queue: collections.deque[Delivery] = collections.deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._active = False
        self._closed = False

    async def __aenter__(self) -> Subscription:
        if self._active or self._closed:
            raise RuntimeError("a subscription can be entered only once")
        self._bus._attach(self)
        self._active = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bus._detach(self)
        self._end()
        self._queue.clear()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Delivery:
        if not self._active and not self._closed:
            raise RuntimeError("enter the subscription with `async with` before iterating")
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def _put(self, delivery: Delivery) -> None:
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # the deque discards the oldest entry on append
        self._queue.append(delivery)
        self._ready.set()

    def _end(self) -> None:
        self._active = False
        self._closed = True
        self._ready.set()


class EventBus(abc.ABC):
    """Publish JSON events to named channels; subscribers in this process receive them."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._closed = False

    @abc.abstractmethod
    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        """Send `event` to every subscriber of `channel`; ValueError if not JSON or too big."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Acquire resources (connections, listener tasks)."""

    async def close(self) -> None:
        """Release resources and end every subscription's iteration."""
        self._closed = True
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription._end()
        self._subscriptions.clear()

    def subscribe(self, *channels: str, maxsize: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        """Return a subscription to `channels`, active inside its `async with` block."""
        if not channels or not all(isinstance(c, str) and c for c in channels):
            raise ValueError("subscribe needs one or more non-empty channel names")
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        return Subscription(self, frozenset(channels), maxsize)

    def subscriber_count(self, channel: str) -> int:
        """Number of active local subscriptions to `channel`."""
        return len(self._subscriptions.get(channel, ()))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the event bus is closed")

    def _attach(self, subscription: Subscription) -> None:
        self._check_open()
        for channel in subscription.channels:
            self._subscriptions.setdefault(channel, set()).add(subscription)

    def _detach(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            subscriptions = self._subscriptions.get(channel)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._subscriptions[channel]

    def _fan_out(self, delivery: Delivery) -> None:
        """Hand `delivery` to every local subscriber of its channel without blocking."""
        for subscription in self._subscriptions.get(delivery.channel, ()):
            subscription._put(delivery)
