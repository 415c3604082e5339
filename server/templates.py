"""The jinja2 environment (autoescaped), page rendering and the static files the pages link."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
from jinja2 import Environment, FileSystemLoader, select_autoescape

from server import keys
from server.resources import web_dir

# Static files: see docs/frontend.md, "Caching". A URL whose ?v= is the file's current content
# hash may be kept for a year; every other URL (modules imported by modules, CSS url()s, stale
# ?v= values) is stored but revalidated on each use against a content-hash ETag.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_CONTENT_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file under /static/ as last read: its bytes and their content hash."""

    stamp: tuple[int, int, int, int, int]
    body: bytes
    version: str
    content_type: str

    @property
    def charset(self) -> str | None:
        """utf-8 for text; None for binary types."""
        textual = self.content_type.startswith("text/") or self.content_type.endswith("json")
        return "utf-8" if textual else None


def content_version(body: bytes) -> str:
    """The content hash used as ?v= and as the ETag: 128 bits of SHA-256, base64url."""
    digest = hashlib.sha256(body).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class StaticFiles(web.StaticResource):
    """/static/: content-hash ETags and versions, `no-cache` unless the URL carries the hash.

    aiohttp's own static handler derives its ETag from mtime and size, which differ between
    server processes and can repeat across releases (reproducible builds fix mtimes); this one
    hashes the content, so every process agrees and an edited file always has a new ETag.
    It stays a StaticResource (replacing aiohttp's handler, `_handle`) so that the access
    middleware and the route tests treat it as the public static files it is.
    """

    def __init__(self, prefix: str, directory: Path) -> None:
        super().__init__(prefix, directory)
        self._root = directory.resolve(strict=True)
        self._files: dict[Path, StaticFile] = {}

    def file(self, filename: str) -> StaticFile | None:
        """The current content of a file under the directory (None if absent, hidden, outside)."""
        parts = filename.split("/")
        if not filename or Path(filename).is_absolute() or any(p.startswith(".") for p in parts):
            return None
        try:
            path = (self._root / filename).resolve()
            path.relative_to(self._root)
            found = path.stat()
            if not stat.S_ISREG(found.st_mode):
                return None
            cached = self._files.get(path)
            if cached is not None and cached.stamp == _stamp(found):
                return cached
            with path.open("rb") as handle:
                opened = os.fstat(handle.fileno())
                body = handle.read()
        except (OSError, ValueError, RuntimeError):
            return None
        suffix = path.suffix.lower()
        fresh = StaticFile(
            stamp=_stamp(opened),
            body=body,
            version=content_version(body),
            content_type=_CONTENT_TYPES.get(suffix)
            or mimetypes.guess_type(path.name)[0]
            or "application/octet-stream",
        )
        self._files[path] = fresh
        return fresh

    def versioned_url(self, filename: str) -> str:
        """/static/<filename>?v=<content hash> (without ?v= when there is no such file)."""
        url = self.url_for(filename=filename)
        found = self.file(filename.lstrip("/"))
        return str(url.with_query({self.VERSION_KEY: found.version}) if found else url)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        found = await asyncio.to_thread(self.file, request.match_info["filename"])
        if found is None:
            raise web.HTTPNotFound()
        versioned = request.query.get(self.VERSION_KEY) == found.version
        headers = {"Cache-Control": IMMUTABLE if versioned else REVALIDATE}
        wanted = request.if_none_match
        if wanted is not None and any(e.value in (ETAG_ANY, found.version) for e in wanted):
            response = web.Response(status=304, headers=headers)
        else:
            response = web.Response(
                body=found.body,
                content_type=found.content_type,
                charset=found.charset,
                headers=headers,
            )
        response.etag = found.version
        return response


def _stamp(found: os.stat_result) -> tuple[int, int, int, int, int]:
    # ctime too: a write always moves it, even when the mtime is set back afterwards.
    return (found.st_ctime_ns, found.st_mtime_ns, found.st_size, found.st_ino, found.st_dev)


def create_environment(static_files: StaticFiles) -> Environment:
    """Templates from web/templates, HTML autoescaped, with `static(name)` for versioned URLs."""
    environment = Environment(
        loader=FileSystemLoader(web_dir() / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    environment.globals["static"] = static_files.versioned_url
    return environment


def render(request: web.Request, name: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a page with the caller and their CSRF token in the context."""
    caller = request.get(keys.PRINCIPAL)
    html = (
        request.app[keys.TEMPLATES]
        .get_template(name)
        .render(
            principal=caller,
            csrf_token=caller.csrf_token if caller else "",
            path=request.path,
            status=status,
            idle_minutes=request.app[keys.SETTINGS].session_idle_minutes,
            **context,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html")
