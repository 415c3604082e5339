"""Rendered resources of WADO-RS (PS3.18 10.4): instances, frames and thumbnails as JPEG/PNG.

Query parameters (PS3.18 8.3.5.1): ``window=center,width[,linear|linear-exact|sigmoid]``
overrides the file's VOI, ``viewport=vw,vh`` bounds the size (the aspect ratio is
kept, the image never enlarged), ``quality=1..100`` sets the JPEG quality. Other
parameters are ignored. ``image/jpeg`` is sent unless the Accept header prefers
``image/png``. A multi-frame instance renders its representative frame; a study
or series thumbnail is that of its first instance with an image.

Responses carry a strong ETag (see ``conditional``) and are kept in the
application's ``RenderedCache`` under the same digest, so identical content shares
entries whoever stored it. The request is scoped and audited first; only then is
If-None-Match compared (304) or the cache consulted, candidate by candidate, so a
study thumbnail still shows the first visible instance that renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from aiohttp import hdrs, web

from dicom_tools.rendering import (
    ImageFormat,
    RenderingError,
    Viewport,
    Window,
    WindowFunction,
    render,
)
from server import keys
from server.access import allow
from server.archive.storage import BlobStorage
from server.dicomweb import conditional, lookup
from server.dicomweb.media import NotAcceptable, accepted
from server.dicomweb.paths import ROLES, path_frames
from server.errors import DomainError, MalformedInput, NotFound

RENDERED_TYPES: dict[str, ImageFormat] = {"image/jpeg": "jpeg", "image/png": "png"}
DEFAULT_TYPE = "image/jpeg"
DEFAULT_QUALITY = 90
THUMBNAIL_SIZE = 128
MAX_CANDIDATES = 16  # instances tried for a study or series thumbnail
RENDERER_VERSION = 1
"""Change it with any change here or in dicom_tools.rendering that changes the bytes."""
INSTANCE_MAX_AGE = 3600
"""Seconds a browser may reuse an instance's image unasked (its bytes are fixed)."""
COLLECTION_MAX_AGE = 60
"""Seconds for a study's or series' thumbnail: a new first instance may change it."""
_WINDOW_FUNCTIONS: dict[str, WindowFunction] = {
    "linear": "linear",
    "linear-exact": "linear_exact",
    "sigmoid": "sigmoid",
}
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_WINDOW = re.compile(rf"({_NUMBER}),({_NUMBER})(?:,([a-z-]+))?")
_VIEWPORT = re.compile(r"([0-9]{1,5}),([0-9]{1,5})")


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderSpec:
    """Everything but the instance that determines a rendered image's bytes."""

    frame: int | None
    window: Window | None
    viewport: Viewport | None
    quality: int
    media_type: str

    def tag(self, sha256: str) -> str:
        """The entity tag (and cache key) of this image of the blob ``sha256``."""
        quality = self.quality if RENDERED_TYPES[self.media_type] == "jpeg" else None
        return conditional.entity_tag(
            "rendered",
            RENDERER_VERSION,
            sha256,
            self.frame,
            self.window,
            self.viewport,
            quality,
            self.media_type,
        )


class NotRenderable(DomainError):
    """The instance has no image this server can render (no pixel data, no decoder...)."""

    status = 422
    code = "not_renderable"


@allow(*ROLES)
async def retrieve_rendered_instance(request: web.Request) -> web.Response:
    """GET .../instances/{instance}/rendered: the representative frame as an image."""
    return await _rendered(request, frame=None, default_viewport=None, purpose="rendered")


@allow(*ROLES)
async def retrieve_rendered_frames(request: web.Request) -> web.Response:
    """GET .../instances/{instance}/frames/{frames}/rendered: one frame as an image."""
    numbers = path_frames(request)
    if len(numbers) > 1:
        raise NotAcceptable(
            "Rendered frames are single images (no multi-frame media type is offered); "
            "ask for one frame per request."
        )
    return await _rendered(request, frame=numbers[0], default_viewport=None, purpose="rendered")


@allow(*ROLES)
async def retrieve_thumbnail(request: web.Request) -> web.Response:
    """GET .../thumbnail of a study, series or instance: its first image, 128 px by default."""
    default = Viewport(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    return await _rendered(request, frame=None, default_viewport=default, purpose="thumbnail")


async def _rendered(
    request: web.Request, *, frame: int | None, default_viewport: Viewport | None, purpose: str
) -> web.Response:
    """Negotiate and parse, locate (scoped, audited), then answer 304, from the cache or render."""
    media_type = negotiate_rendered(request)
    query = request.query
    spec = RenderSpec(
        frame=frame,
        window=parse_window(query["window"]) if "window" in query else None,
        viewport=parse_viewport(query["viewport"]) if "viewport" in query else default_viewport,
        quality=parse_quality(query["quality"]) if "quality" in query else DEFAULT_QUALITY,
        media_type=media_type,
    )
    found = await lookup.locate(request, purpose)
    cache = request.app[keys.RENDERED_CACHE]
    storage = request.app[keys.ARCHIVE].storage
    cache_control = _cache_control(request)
    refusal: DomainError = NotRenderable("Nothing to render.")
    for item in found[:MAX_CANDIDATES]:
        tag = spec.tag(item.sha256)
        known = cache.refusal(tag)
        if known is not None:
            refusal = known
            continue
        headers = conditional.validators(tag, cache_control)
        if conditional.not_modified(request, tag):
            return conditional.not_modified_response(headers)
        try:
            image = await cache.fetch(tag, partial(_render, storage, item.sha256, spec))
        except NotRenderable as error:
            cache.refuse(tag, error)
            refusal = error
            continue
        if conditional.not_modified(request, tag, found=True):
            return conditional.not_modified_response(headers)
        return web.Response(body=image, headers={hdrs.CONTENT_TYPE: media_type, **headers})
    raise refusal


def _cache_control(request: web.Request) -> str:
    """An instance's image is kept an hour, a study's or series' (its first image) a minute."""
    if conditional.instances_replaceable(request):
        return conditional.REVALIDATE
    one_instance = "instance" in request.match_info
    return f"private, max-age={INSTANCE_MAX_AGE if one_instance else COLLECTION_MAX_AGE}"


def negotiate_rendered(request: web.Request) -> str:
    """The image media type to send: the most preferred of image/jpeg and image/png."""
    for wanted in accepted(request):
        if wanted.multipart:
            continue
        if wanted.type in RENDERED_TYPES:
            return wanted.type
        if wanted.type in ("*/*", "image/*"):
            return DEFAULT_TYPE
    raise NotAcceptable("Rendered images are sent as image/jpeg or image/png.")


def parse_window(text: str) -> Window:
    """The ``window`` parameter: center,width[,function]."""
    match = _WINDOW.fullmatch(text.strip().lower())
    function = _WINDOW_FUNCTIONS.get(match.group(3) or "linear") if match else None
    if match is None or function is None:
        raise MalformedInput(
            f"window is center,width[,linear|linear-exact|sigmoid] with numbers, not {text[:60]!r}."
        )
    try:
        return Window(float(match.group(1)), float(match.group(2)), function)
    except RenderingError as error:
        raise MalformedInput(error.message) from None


def parse_viewport(text: str) -> Viewport:
    """The ``viewport`` parameter: vw,vh in pixels (source regions are not supported)."""
    match = _VIEWPORT.fullmatch(text.strip())
    if match is None:
        raise MalformedInput(f"viewport is width,height in pixels, not {text[:60]!r}.")
    try:
        return Viewport(int(match.group(1)), int(match.group(2)))
    except RenderingError as error:
        raise MalformedInput(error.message) from None


def parse_quality(text: str) -> int:
    """The ``quality`` parameter: 1..100."""
    if not re.fullmatch(r"[0-9]{1,3}", text.strip()) or not 1 <= int(text) <= 100:
        raise MalformedInput(f"quality is a whole number from 1 to 100, not {text[:20]!r}.")
    return int(text)


def _render(storage: BlobStorage, sha256: str, spec: RenderSpec) -> bytes:
    """The image of one stored blob (blocking); refusals as domain errors."""
    with storage.open(sha256) as source:
        try:
            return render(
                source,
                frame=spec.frame,
                window=spec.window,
                image_format=RENDERED_TYPES[spec.media_type],
                viewport=spec.viewport,
                quality=spec.quality,
            )
        except RenderingError as error:
            if error.reason == "no_such_frame":
                raise NotFound(error.message) from None
            if error.reason == "invalid_parameter":
                raise MalformedInput(error.message) from None
            raise NotRenderable(error.message, details={"reason": error.reason}) from None
