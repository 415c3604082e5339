"""The jinja2 environment (autoescaped), page rendering and the static files the pages link."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
from jinja2 import Environment, FileSystemLoader, select_autoescape

from server import keys
from server.package_data import web_dir

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


# Display filters: one form for each kind of value on every page (docs/frontend.md).
EMPTY = "—"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(r"([0-9]{4})([-.]?)([0-9]{2})\2([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):?([0-9]{2})(?::?([0-9]{2})(?:\.[0-9]{1,6})?)?")
SEXES = {"F": "Female", "M": "Male", "O": "Other", "U": "Unknown"}


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def dicom_date(value: object) -> str:
    """'14 Mar 1956' from a date or datetime, a DICOM DA (YYYYMMDD) or an ISO date.

    Empty is '—'; partial, invalid or other values are shown as they are.
    """
    if isinstance(value, date):
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year:04d}"
    text = _text(value)
    if not text:
        return EMPTY
    found = _DATE.fullmatch(text)
    if found:
        try:
            return dicom_date(date(int(found[1]), int(found[3]), int(found[4])))
        except ValueError:
            pass
    return text


def dicom_time(value: object) -> str:
    """'09:05' from a time or datetime, a DICOM TM (HHMM[SS[.F]]) or 'HH:MM[:SS]'.

    Empty is '—'; an hour alone, invalid or other values are shown as they are.
    """
    if isinstance(value, datetime | time):
        return f"{value.hour:02d}:{value.minute:02d}"
    text = _text(value)
    if not text:
        return EMPTY
    found = _TIME.fullmatch(text)
    if found and int(found[1]) < 24 and int(found[2]) < 60 and int(found[3] or 0) < 61:
        return f"{found[1]}:{found[2]}"
    return text


def person_name(value: object) -> str:
    """'FAMILY, Given Middle Suffix (Prefix)' from a DICOM PN 'Family^Given^Middle^Prefix^Suffix'.

    Of the '='-separated groups (alphabetic, ideographic, phonetic) the first non-empty one is
    shown; an empty name is '—'. The family name is in capitals so that it cannot be mistaken
    for a given name.
    """
    for group in _text(value).split("="):
        parts = [part.strip() for part in group.split("^")] + [""] * 4
        family, given, middle, prefix, suffix = parts[:5]
        if not any((family, given, middle, prefix, suffix)):
            continue
        given_names = " ".join(p for p in (given, middle, suffix) if p)
        name = ", ".join(p for p in (family.upper(), given_names) if p)
        return " ".join(p for p in (name, f"({prefix})" if prefix else "") if p)
    return EMPTY


def sex(value: object) -> str:
    """Female, Male, Other or Unknown for a DICOM/API code (F, M, O, U); '—' when empty."""
    text = _text(value)
    return SEXES.get(text, text) if text else EMPTY


def create_environment(static_files: StaticFiles) -> Environment:
    """Templates from web/templates, HTML autoescaped, with `static(name)` for versioned URLs
    and the display filters dicom_date, dicom_time, person_name and sex."""
    environment = Environment(
        loader=FileSystemLoader(web_dir() / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]

    environment.globals["static"] = static_files.versioned_url
    environment.filters.update(
        dicom_date=dicom_date, dicom_time=dicom_time, person_name=person_name, sex=sex
    )
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
