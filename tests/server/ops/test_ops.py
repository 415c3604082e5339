"""Health, readiness, metrics and security headers."""

from __future__ import annotations

import shutil

from server import keys
from tests.support import Client, World


async def test_health_and_readiness(client: Client, world: World) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


async def test_readiness_fails_when_storage_is_gone(client: Client, world: World) -> None:
    shutil.rmtree(client.app[keys.SETTINGS].data_dir)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["checks"] == {"database": "ok", "storage": "error: not writable"}


async def test_metrics_need_an_admin_and_count_requests(client: Client, world: World) -> None:
    await client.get("/api/v1/me", headers=world.auth("gp-a"))
    assert (await client.get("/metrics", headers=world.auth("gp-a"))).status == 403
    response = await client.get("/metrics", headers=world.auth("admin"))
    assert response.status == 200
    text = await response.text()
    assert 'doorstep_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in text
    assert "doorstep_http_request_duration_seconds_bucket" in text


async def test_security_headers_on_pages_api_and_static(client: Client, world: World) -> None:
    for path in ("/login", "/api/v1/me", "/static/core/base.css"):
        response = await client.get(path, headers=world.auth("gp-a"))
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert "Strict-Transport-Security" not in headers, path
    api = await client.get("/api/v1/me", headers=world.auth("gp-a"))
    assert api.headers["Cache-Control"] == "no-store"
