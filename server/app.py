"""The application factory: one web.Application with every feature and resource."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from server import keys, middleware, openapi, templates
from server.accounts import routes as accounts_routes
from server.accounts.invalidation import principal_cache_ctx
from server.accounts.middleware import authorise
from server.archive import lifetime as archive_lifetime
from server.db import WriteGroup, create_engine, create_sessionmaker
from server.dicomweb import routes as dicomweb_routes
from server.dimse.lifetime import dimse_server
from server.events import routes as events_routes
from server.events.bus import create_event_bus
from server.metrics import Metrics
from server.ops import routes as ops_routes
from server.pages import routes as pages_routes
from server.patients import routes as patients_routes
from server.resources import web_dir
from server.settings import Settings


async def _data_directory(app: web.Application) -> AsyncIterator[None]:
    app[keys.SETTINGS].data_dir.mkdir(parents=True, exist_ok=True)
    yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[keys.SETTINGS])
    app[keys.ENGINE] = engine
    app[keys.SESSIONMAKER] = create_sessionmaker(engine)
    app[keys.WRITES] = WriteGroup(app[keys.SESSIONMAKER])
    yield
    await app[keys.WRITES].close()
    await engine.dispose()


async def _event_bus(app: web.Application) -> AsyncIterator[None]:
    bus = create_event_bus(app[keys.SETTINGS].database_url)
    await bus.start()
    app[keys.EVENT_BUS] = bus
    yield
    await bus.close()


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
    app[keys.SECRET] = settings.resolved_secret_key()
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.extend(
        [_data_directory, _database, _event_bus, principal_cache_ctx, _websockets]
    )
    app.cleanup_ctx.append(archive_lifetime.blob_storage)
    app.cleanup_ctx.append(dimse_server)  # last: needs the database and blob storage
    app.on_response_prepare.append(middleware.security_headers)

    ops_routes.setup(app)
    accounts_routes.setup(app)
    patients_routes.setup(app)
    events_routes.setup(app)
    dicomweb_routes.setup(app)
    pages_routes.setup(app)
    app.router.add_get("/api/v1/openapi.json", openapi.openapi_json)
    static = templates.StaticFiles("/static", web_dir() / "static")
    app.router.register_resource(static)
    app[keys.TEMPLATES] = templates.create_environment(static)
    return app
