"""Error bodies: malformed, oversized, wrong type, unknown fields, unexpected failures."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.access import allow
from server.app import create_app
from server.settings import Settings
from tests.forms import sign_in
from tests.support import Client, World


def error_of(body: dict[str, object]) -> dict[str, object]:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "message", "details"}
    return error


async def test_malformed_json_is_400(client: Client, world: World) -> None:
    response = await client.post(
        "/api/v1/patients",
        data=b'{"name": "Doe^Jane", ',
        headers={**world.auth("gp-a"), "Content-Type": "application/json"},
    )
    assert response.status == 400
    error = error_of(await response.json())
    assert error["code"] == "malformed"
    assert str(error["message"]).startswith("Request body is not valid JSON")


async def test_wrong_content_type_is_415(client: Client, world: World) -> None:
    response = await client.post(
        "/api/v1/patients",
        data="name=x",
        headers={**world.auth("gp-a"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 415
    assert error_of(await response.json())["code"] == "unsupported_media_type"


async def test_huge_body_is_413_and_server_keeps_serving(client: Client, world: World) -> None:
    huge = b'{"name": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/api/v1/patients",
        data=huge,
        headers={**world.auth("gp-a"), "Content-Type": "application/json"},
    )
    assert response.status == 413
    error = error_of(await response.json())
    assert error["code"] == "payload_too_large"
    assert "1048576" in str(error["message"])
    assert (await client.get("/api/v1/me", headers=world.auth("gp-a"))).status == 200


async def test_unknown_route_is_json_404_for_api(client: Client, world: World) -> None:
    response = await client.get("/api/v1/nothing-here", headers=world.auth("gp-a"))
    assert response.status == 404
    assert error_of(await response.json())["code"] == "not_found"
    wrong_method = await client.delete("/api/v1/me", headers=world.auth("gp-a"))
    assert wrong_method.status == 405
    assert error_of(await wrong_method.json())["code"] == "method_not_allowed"
    assert set(wrong_method.headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_a_page_answers_405_with_allow(client: Client, world: World) -> None:
    response = await client.delete("/patients/new")
    assert response.status == 405
    assert "text/html" in response.content_type
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="x" * 32, log_json=False, dicom_port=0)


async def test_unexpected_failure_is_500_without_stack_trace(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(sqlite_settings)

    @allow(public=True)
    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("secret internals /etc/passwd")

    app.router.add_get("/api/v1/broken", broken)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/v1/broken")
        text = await response.text()
    assert response.status == 500
    assert "secret internals" not in text
    assert "Traceback" not in text
    error = error_of(await response.json())
    assert error["code"] == "internal"
    assert isinstance(error["details"], dict)
    assert "secret internals" in caplog.text


FORM = "application/x-www-form-urlencoded"
NOT_UTF8 = b"username=J\xf6rg&password=x%FF\xfe&login_csrf=t"


async def test_a_form_that_is_not_utf8_is_400_not_500(
    client: Client, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    anonymous = await client.post("/login", data=NOT_UTF8, headers={"Content-Type": FORM})
    assert anonymous.status == 400
    assert "text/html" in anonymous.content_type
    unknown_charset = await client.post(
        "/login", data=b"username=a", headers={"Content-Type": f"{FORM}; charset=klingon"}
    )
    assert unknown_charset.status == 400

    csrf = await sign_in(client, "gp-a")
    # Without a CSRF header the token is looked for in the form (the middleware reads it) ...
    page = await client.post("/patients/new", data=NOT_UTF8, headers={"Content-Type": FORM})
    assert page.status == 400
    # ... with one, the page itself reads the form.
    read = await client.post(
        "/patients/new", data=NOT_UTF8, headers={"Content-Type": FORM, "X-CSRF-Token": csrf}
    )
    assert read.status == 400
    api = await client.post("/api/v1/patients", data=NOT_UTF8, headers={"Content-Type": FORM})
    assert api.status == 400
    assert error_of(await api.json())["code"] == "malformed"
    assert "unhandled error" not in caplog.text


async def test_a_body_that_breaks_its_content_encoding_is_400(
    client: Client, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post(
        "/api/v1/patients",
        data=b"this is not gzip",
        headers={
            **world.auth("gp-a"),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 400
    error = error_of(await response.json())
    assert error["code"] == "bad_request"
    assert (
        error["message"]
        == "The request body cannot be read: Can not decode content-encoding: gzip."
    )
    assert "unreadable request body" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
