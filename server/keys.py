"""Every typed key stored on the application or on a request."""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.accounts.principal import Principal
from server.accounts.principal_cache import PrincipalCache
from server.archive.storage import BlobStorage
from server.db import WriteGroup
from server.events.bus import EventBus
from server.metrics import Metrics
from server.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SECRET = web.AppKey("secret", bytes)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
WRITES = web.AppKey("writes", WriteGroup)
TEMPLATES = web.AppKey("templates", Environment)
EVENT_BUS = web.AppKey("event_bus", EventBus)
METRICS = web.AppKey("metrics", Metrics)
PRINCIPAL_CACHE = web.AppKey("principal_cache", PrincipalCache)
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")
BLOB_STORAGE: web.AppKey[BlobStorage] = web.AppKey("blob_storage")

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
REQUEST_ID = web.RequestKey("request_id", str)
