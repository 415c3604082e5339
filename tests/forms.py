"""Page tests as a browser posts: sign in through the real form, read CSRF tokens, post forms."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tests.support import PASSWORD, Client

_LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]*)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def login_csrf(html: str) -> str:
    """The login form's hidden CSRF field."""
    found = _LOGIN_CSRF.search(html)
    assert found is not None, "login form has no login_csrf field"
    return found.group(1)


def csrf_meta(html: str) -> str:
    """The session CSRF token from a page's <meta name="csrf-token">."""
    found = _CSRF_META.search(html)
    assert found is not None, "page has no csrf-token meta"
    return found.group(1)


async def sign_in(client: Client, username: str, password: str = PASSWORD) -> str:
    """Sign in through GET/POST /login like a browser; returns the session's CSRF token."""
    form = await client.get("/login")
    assert form.status == 200
    response = await client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "login_csrf": login_csrf(await form.text()),
            "next": "/",
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/"
    home = await client.get("/")
    assert home.status == 200
    token = csrf_meta(await home.text())
    assert token
    return token


async def post_form(
    client: Client, path: str, csrf: str | None, fields: Mapping[str, str | list[str]] | None = None
) -> tuple[int, str, str]:
    """POST a urlencoded form (with csrf_token unless None); returns status, body, Location."""
    data: list[tuple[str, str]] = []
    for name, value in (fields or {}).items():
        data += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    if csrf is not None:
        data.append(("csrf_token", csrf))
    response = await client.post(path, data=data, allow_redirects=False)
    return response.status, await response.text(), response.headers.get("Location", "")
