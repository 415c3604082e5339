"""Every registered route refuses anonymous callers, except sign-in, health, static files,
the guest links of consults and the kiosk's enrolment."""

from __future__ import annotations

import re

from aiohttp import web

from tests.support import Client, World

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/consults/guest/{token}"),  # a consult's guest link: the token is the credential
    ("GET", "/kiosk"),  # the kiosk's entry: its enrolment screen for anybody not a kiosk
    ("POST", "/kiosk/enrol"),  # a typed enrolment code: the code is the credential
    ("GET", "/kiosk/take-home/{token}"),  # a visit's take-home summary: the token is the key
    ("GET", "/kiosk/follow-ups/{token}"),  # a follow-up's take-home link: the token likewise
    ("GET", "/kiosk/follow-ups/{token}.ics"),  # its calendar file
}


def concrete(resource: web.AbstractResource) -> str:
    """A requestable path that the route's own pattern matches."""
    info = resource.get_info()
    if "pattern" not in info:
        return resource.canonical
    for value in ("1", "x1", "abc"):
        path = re.sub(r"\{[^}]+\}", value, info["formatter"])
        if info["pattern"].fullmatch(path):
            return path
    raise AssertionError(f"no sample path matches {resource.canonical}")


async def test_anonymous_requests_are_refused_everywhere(client: Client, world: World) -> None:
    routes = [
        (route.method, route.resource)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and not isinstance(route.resource, web.StaticResource)
    ]
    assert len(routes) >= 10
    checked = []
    for method, resource in routes:
        path = resource.canonical
        if (method, path) in PUBLIC:
            continue
        response = await client.request(method, concrete(resource), allow_redirects=False)
        if path.startswith("/api/") or path == "/metrics":
            assert response.status == 401, (method, path, response.status)
            assert (await response.json())["error"]["code"] == "not_authenticated"
        else:
            assert response.status in (303, 401), (method, path, response.status)
            if response.status == 303:
                assert response.headers["Location"].startswith("/login"), (method, path)
        checked.append((method, path))
    assert ("GET", "/api/v1/me") in checked
    assert ("GET", "/api/v1/events") in checked


async def test_public_routes_answer_without_credentials(client: Client, world: World) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/login")).status == 200
    unknown_link = await client.get("/consults/guest/not-a-token", allow_redirects=False)
    assert unknown_link.status == 410
    assert "not valid" in await unknown_link.text()
    css = await client.get("/static/core/base.css")
    assert css.status == 200
    assert css.content_type == "text/css"
