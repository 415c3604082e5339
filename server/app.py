"""The application factory: one web.Application with every feature and resource.

This is the composition root: the one kernel module that knows every feature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from server import i18n, keys, middleware, openapi, templates
from server.accounts import changes
from server.accounts import routes as accounts_routes
from server.accounts.middleware import authorise
from server.archive import lifetime as archive_lifetime
from server.archive import routes as archive_routes
from server.audit import lifetime as audit_lifetime
from server.audit import routes as audit_routes
from server.audit.service import AuditLog
from server.consults import routes as consults_routes
from server.db import WriteGroup, create_engine, create_sessionmaker
from server.dicomweb import lifetime as dicomweb_lifetime
from server.dicomweb import routes as dicomweb_routes
from server.dimse.lifetime import dimse_server
from server.ecg import routes as ecg_routes
from server.events import lifetime as events_lifetime
from server.events import routes as events_routes
from server.kiosk import routes as kiosk_routes
from server.metrics import Metrics
from server.ops import routes as ops_routes
from server.package_data import web_dir
from server.pages import routes as pages_routes
from server.patients import routes as patients_routes
from server.reading import routes as reading_routes
from server.reports import routes as reports_routes
from server.settings import Settings
from server.uploads import routes as uploads_routes
from server.viewer import routes as viewer_routes


async def _data_directory(app: web.Application) -> AsyncIterator[None]:
    app[keys.SETTINGS].data_dir.mkdir(parents=True, exist_ok=True)
    yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[keys.SETTINGS])
    app[keys.ENGINE] = engine
    app[keys.SESSIONMAKER] = create_sessionmaker(engine)
    app[keys.WRITE_GROUP] = WriteGroup(app[keys.SESSIONMAKER])
    yield
    await app[keys.WRITE_GROUP].close()
    await engine.dispose()


async def _websockets(app: web.Application) -> AsyncIterator[None]:
    sockets: set[web.WebSocketResponse] = set()
    app[keys.WEBSOCKETS] = sockets
    yield
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutting down")


def create_app(settings: Settings) -> web.Application:
    """Build the Doorstep application for these settings."""
    app = web.Application(
        middlewares=[middleware.request_context, middleware.errors, authorise],
        client_max_size=settings.max_body_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.AUDIT] = AuditLog(settings.resolved_secret_key())
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.extend(
        [
            _data_directory,
            _database,
            events_lifetime.event_bus,
            changes.principal_cache,
            _websockets,
            audit_lifetime.checkpoints,
            archive_lifetime.archive,
            dicomweb_lifetime.rendered_cache,
            dimse_server,  # last: needs the database and the archive
        ]
    )
    app.on_response_prepare.append(middleware.security_headers)

    for feature_routes in (
        ops_routes,
        accounts_routes,
        audit_routes,
        patients_routes,
        events_routes,
        dicomweb_routes,
        ecg_routes,
        archive_routes,
        uploads_routes,
        viewer_routes,
        reading_routes,
        reports_routes,
        consults_routes,
        kiosk_routes,
        pages_routes,
    ):
        feature_routes.setup(app)
    app.router.add_get("/api/v1/openapi.json", openapi.openapi_json)
    static = templates.StaticFiles("/static", web_dir() / "static")
    app.router.register_resource(static)
    app[keys.TEMPLATES] = templates.create_environment(static)
    app[keys.CATALOGUES] = i18n.Catalogues.load()
    return app
