"""Conditional GETs of WADO-RS (RFC 9110 8.8.3, 13.1.2): strong entity tags and Cache-Control.

An entity tag is a digest of what determines a response's bytes: the SHA-256 of the
stored instance, the resource's parameters, the negotiated media type, and the
versions of the libraries that decode and encode pixels (an upgrade that could change
the bytes changes every tag). Tags are strong, so the bytes behind one tag never vary:
a multipart response takes its boundary from its tag. The caller scopes and audits
before it compares tags, so a 304 is a read like a 200 and another organisation still
gets 404.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import zlib

from aiohttp import hdrs, web
from aiohttp.helpers import ETAG_ANY

from server import keys

_PIXEL_LIBRARIES = (
    "pillow",
    "numpy",
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


LIBRARIES = ";".join(
    [
        *(f"{name}={_version(name)}" for name in _PIXEL_LIBRARIES),
        f"zlib={zlib.ZLIB_RUNTIME_VERSION}",
    ]
)
"""The pixel libraries' versions, part of every entity tag."""

IMMUTABLE = "private, max-age=31536000, immutable"
"""Frames and bulk data: an instance's stored bytes never change (unless replaced)."""
REVALIDATE = "private, no-cache"
"""Kept by the browser, asked again with If-None-Match before each use."""


def entity_tag(*parts: object) -> str:
    """The hex digest naming one representation: the parts and the library versions."""
    text = "\x1f".join([LIBRARIES, *(repr(part) for part in parts)])
    return hashlib.sha256(text.encode()).hexdigest()


def quoted(tag: str) -> str:
    """The ETag header value of a strong tag."""
    return f'"{tag}"'


def not_modified(request: web.Request, tag: str, *, found: bool = False) -> bool:
    """True when If-None-Match names this tag, or is ``*`` and the response was found: 304.

    Before the work, a named tag alone answers (only a 200 ever gave it out, and the same
    inputs give the same outcome); ``*`` waits until the work has succeeded, because a
    response that would be an error ignores preconditions (RFC 9110 13.2.1).
    """
    wanted = request.if_none_match
    return wanted is not None and any(
        t.value == tag or (found and t.value == ETAG_ANY) for t in wanted
    )


def instances_replaceable(request: web.Request) -> bool:
    """True when stores may give an instance new bytes (archive_conflict=replace)."""
    return request.app[keys.ARCHIVE].conflict == "replace"


VARY = "Accept, Authorization, Cookie"
"""The media type follows Accept; the credentials are named too, so that a browser shared
by several users (a clinic's workstation) never answers one user from another's cache
without asking the server, which scopes and audits."""


def validators(tag: str, cache_control: str) -> dict[str, str]:
    """The headers of a 200 or 304 with this tag."""
    return {hdrs.ETAG: quoted(tag), hdrs.CACHE_CONTROL: cache_control, hdrs.VARY: VARY}


def not_modified_response(headers: dict[str, str]) -> web.Response:
    """304 with the validators and caching headers the 200 would carry."""
    return web.Response(status=304, headers=headers)
