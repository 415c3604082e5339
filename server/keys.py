"""Every typed key stored on the application or on a request.

The kernel imports no feature at run time: the features' types are named here
for the type checker only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.db import WriteGroup
from server.i18n import Catalogues
from server.identity import Principal
from server.metrics import Metrics
from server.settings import Settings

if TYPE_CHECKING:
    from server.accounts.changes import AccountChanges
    from server.accounts.principal_cache import PrincipalCache
    from server.archive.service import Archive
    from server.audit.service import AuditLog
    from server.consults.check import EchoPeers
    from server.consults.recording_peer import Recorders
    from server.consults.signaling import Rooms
    from server.dicomweb.rendered_cache import RenderedCache
    from server.ecg.service import EcgCache
    from server.events.bus import EventBus
    from server.reports.signing import Signing

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
WRITE_GROUP = web.AppKey("write_group", WriteGroup)
TEMPLATES = web.AppKey("templates", Environment)
CATALOGUES = web.AppKey("catalogues", Catalogues)
METRICS = web.AppKey("metrics", Metrics)
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
EVENT_BUS: web.AppKey[EventBus] = web.AppKey("event_bus")
PRINCIPAL_CACHE: web.AppKey[PrincipalCache] = web.AppKey("principal_cache")
ACCOUNT_CHANGES: web.AppKey[AccountChanges] = web.AppKey("account_changes")
ARCHIVE: web.AppKey[Archive] = web.AppKey("archive")
RENDERED_CACHE: web.AppKey[RenderedCache] = web.AppKey("rendered_cache")
ECG_CACHE: web.AppKey[EcgCache] = web.AppKey("ecg_cache")
SIGNING: web.AppKey[Signing] = web.AppKey("signing")
CONSULT_ROOMS: web.AppKey[Rooms] = web.AppKey("consult_rooms")
CONSULT_CHECKS: web.AppKey[EchoPeers] = web.AppKey("consult_checks")
CONSULT_RECORDERS: web.AppKey[Recorders] = web.AppKey("consult_recorders")

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
REQUEST_ID = web.RequestKey("request_id", str)
