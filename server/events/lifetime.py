"""The event bus of a running application: PostgreSQL LISTEN/NOTIFY or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.events.bus import EventBus
from server.events.memory import InProcessEventBus
from server.events.postgres import PostgresEventBus


def create_event_bus(database_url: str) -> EventBus:
    """The PostgreSQL bus for `postgresql…` URLs (across processes), else the in-process one."""
    if database_url.startswith("postgresql"):
        return PostgresEventBus(database_url)
    return InProcessEventBus()


async def event_bus(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the started bus under app[keys.EVENT_BUS], closed at shutdown."""
    bus = create_event_bus(app[keys.SETTINGS].database_url)
    await bus.start()
    app[keys.EVENT_BUS] = bus
    yield
    await bus.close()
