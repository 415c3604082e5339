"""The cache rule for /static/ (docs/frontend.md): content-hash ETags, no-cache, ?v= immutable."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import server.app
from server.app import create_app
from server.package_data import web_dir
from server.settings import Settings

Client = TestClient[web.Request, web.Application]
STATIC = web_dir() / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
_VERSIONED = re.compile(r'(?:href|src)="(/static/[^"?]+)\?v=([^"&]+)"')


def expected_etag(body: bytes) -> str:
    """Computed here independently of the server: 128 bits of SHA-256 in base64url, quoted."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:16])
    return '"' + digest.decode().rstrip("=") + '"'


def static_files(root: Path = STATIC) -> list[str]:
    """Every file under web/static, as its URL path below /static/."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_every_static_file_revalidates_against_its_content_hash(client: Client) -> None:
    names = static_files()
    assert names
    for name in names:
        body = (STATIC / name).read_bytes()
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name
        assert await response.read() == body, name
        assert response.headers["ETag"] == expected_etag(body), name
        assert response.headers["Cache-Control"] == "no-cache", name
        assert "Last-Modified" not in response.headers, name
        again = await client.get(
            f"/static/{name}", headers={"If-None-Match": response.headers["ETag"]}
        )
        assert again.status == 304, name
        assert await again.read() == b""
        assert again.headers["ETag"] == response.headers["ETag"]
        assert again.headers["Cache-Control"] == "no-cache"
        other = await client.get(f"/static/{name}", headers={"If-None-Match": '"stale"'})
        assert other.status == 200, name


async def test_content_types(client: Client) -> None:
    expected = {
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".css": "text/css",
        ".svg": "image/svg+xml",
    }
    for name in static_files():
        response = await client.get(f"/static/{name}")
        assert response.content_type == expected[Path(name).suffix], name
        if response.content_type.startswith("text/"):
            assert response.charset == "utf-8", name
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_versioned_urls_of_pages_are_immutable_only_while_current(client: Client) -> None:
    html = await (await client.get("/login")).text()
    linked = _VERSIONED.findall(html)
    assert len(linked) >= 2
    for path, version in linked:
        body = (STATIC / path.removeprefix("/static/")).read_bytes()
        assert f'"{version}"' == expected_etag(body), path
        response = await client.get(f"{path}?v={version}")
        assert response.status == 200
        assert response.headers["Cache-Control"] == IMMUTABLE, path
        assert response.headers["ETag"] == f'"{version}"'
        # A page rendered before a deploy asks for the old version: not kept for a year.
        stale = await client.get(f"{path}?v=old-version")
        assert stale.status == 200
        assert stale.headers["Cache-Control"] == "no-cache", path


async def test_head_and_unsafe_paths(client: Client) -> None:
    name = static_files()[0]
    head = await client.head(f"/static/{name}")
    assert head.status == 200
    assert head.headers["ETag"] == expected_etag((STATIC / name).read_bytes())
    for path in (
        "/static/../server/app.py",
        "/static/%2e%2e/server/app.py",
        "/static/..%2fserver/app.py",
        "/static//etc/passwd",
        "/static/nothing-here.mjs",
        "/static/.hidden",
        "/static/",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert "ETag" not in response.headers, path


@pytest.fixture
def web_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of web/ that the app under test serves, so a test may edit it."""
    copy = tmp_path / "web"
    shutil.copytree(web_dir(), copy)
    monkeypatch.setattr(server.app, "web_dir", lambda: copy)
    return copy


@pytest.fixture
async def copy_client(web_copy: Path, settings: Settings) -> AsyncIterator[Client]:
    """The real application, serving the copy of web/."""
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


def edit_keeping_size_and_mtime(path: Path) -> bytes:
    """Change one byte of a file, then set its modification time back; the new content."""
    before = path.stat()
    old = path.read_bytes()
    new = old[:-1] + (b" " if old[-1:] == b"\n" else b"\n")
    assert len(new) == len(old)
    assert new != old
    path.write_bytes(new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    return new


async def test_an_edited_module_is_fetched_again(web_copy: Path, copy_client: Client) -> None:
    # core/csrf.mjs is only imported by other modules, so its URL never carries a version:
    # the browser revalidates it on every use and must get the edit.
    name = "core/csrf.mjs"
    html = await (await copy_client.get("/login")).text()
    assert name not in html
    first = await copy_client.get(f"/static/{name}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    assert (await copy_client.get(f"/static/{name}", headers={"If-None-Match": etag})).status == 304

    # Same size and same modification time: only the content tells the versions apart
    # (reproducible builds and some deploy tools fix mtimes; mtime-size ETags would repeat).
    new = edit_keeping_size_and_mtime(web_copy / "static" / name)
    changed = await copy_client.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert changed.status == 200
    assert await changed.read() == new
    assert changed.headers["ETag"] == expected_etag(new)
    assert changed.headers["ETag"] != etag
    assert changed.headers["Cache-Control"] == "no-cache"
    fresh = await copy_client.get(
        f"/static/{name}", headers={"If-None-Match": changed.headers["ETag"]}
    )
    assert fresh.status == 304
    # The pages link the same versions: nothing else had to know.
    html_after = await (await copy_client.get("/login")).text()
    assert _VERSIONED.findall(html_after) == _VERSIONED.findall(html)


async def test_an_edited_entry_gets_a_new_version(web_copy: Path, copy_client: Client) -> None:
    html = await (await copy_client.get("/login")).text()
    linked = dict(_VERSIONED.findall(html))
    old_version = linked["/static/core/main.mjs"]
    kept = await copy_client.get(f"/static/core/main.mjs?v={old_version}")
    assert kept.headers["Cache-Control"] == IMMUTABLE

    new = edit_keeping_size_and_mtime(web_copy / "static" / "core" / "main.mjs")
    html = await (await copy_client.get("/login")).text()
    relinked = dict(_VERSIONED.findall(html))
    assert relinked["/static/core/main.mjs"] == expected_etag(new).strip('"')
    assert relinked["/static/core/main.mjs"] != old_version
    assert {k: v for k, v in relinked.items() if k != "/static/core/main.mjs"} == {
        k: v for k, v in linked.items() if k != "/static/core/main.mjs"
    }
    response = await copy_client.get(f"/static/core/main.mjs?v={relinked['/static/core/main.mjs']}")
    assert await response.read() == new
    assert response.headers["Cache-Control"] == IMMUTABLE
    # A page from before the edit asks for the old version: it gets the new content, revalidated.
    stale = await copy_client.get(f"/static/core/main.mjs?v={old_version}")
    assert await stale.read() == new
    assert stale.headers["Cache-Control"] == "no-cache"
