"""The one access mechanism: roles declared on a handler are enforced for every caller."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.endpoint import api
from server.identity import Role
from server.settings import Settings
from tests.support import World


async def test_a_kiosk_calling_a_specialist_route_is_refused(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    app = create_app(settings)

    @api(summary="specialists only", tag="test", roles=[Role.SPECIALIST])
    async def specialist_only(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    app.router.add_get("/api/v1/test/specialist", specialist_only)
    async with TestClient(TestServer(app)) as client:
        kiosk = await client.get("/api/v1/test/specialist", headers=world.auth("kiosk"))
        gp = await client.get("/api/v1/test/specialist", headers=world.auth("gp-a"))
        specialist = await client.get("/api/v1/test/specialist", headers=world.auth("cardio"))
        anonymous = await client.get("/api/v1/test/specialist")
        message = (await kiosk.json())["error"]["message"]
    assert kiosk.status == gp.status == 403
    assert message == "This is for specialist accounts; you are signed in as kiosk."
    assert specialist.status == 200
    assert anonymous.status == 401


async def test_undeclared_handlers_need_a_signed_in_user(settings: Settings, world: World) -> None:
    app = create_app(settings)

    async def forgotten(request: web.Request) -> web.StreamResponse:
        return web.json_response({"leak": True})

    app.router.add_get("/api/v1/test/forgotten", forgotten)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/v1/test/forgotten")).status == 401
        assert (
            await client.get("/api/v1/test/forgotten", headers=world.auth("kiosk"))
        ).status == 200
