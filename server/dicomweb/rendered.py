"""Rendered resources of WADO-RS (PS3.18 10.4): instances, frames and thumbnails as JPEG/PNG.

Query parameters (PS3.18 8.3.5.1): ``window=center,width[,linear|linear-exact|sigmoid]``
overrides the file's VOI, ``viewport=vw,vh`` bounds the size (the aspect ratio is
kept, the image never enlarged), ``quality=1..100`` sets the JPEG quality. Other
parameters are ignored. ``image/jpeg`` is sent unless the Accept header prefers
``image/png``. A multi-frame instance renders its representative frame; a study
or series thumbnail is that of its first instance with an image.
"""

from __future__ import annotations

import asyncio
import re

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
from server.dicomweb import lookup
from server.dicomweb.media import NotAcceptable, accepted
from server.dicomweb.paths import ROLES, path_frames
from server.errors import DomainError, MalformedInput, NotFound

RENDERED_TYPES: dict[str, ImageFormat] = {"image/jpeg": "jpeg", "image/png": "png"}
DEFAULT_TYPE = "image/jpeg"
DEFAULT_QUALITY = 90
THUMBNAIL_SIZE = 128
MAX_CANDIDATES = 16  # instances tried for a study or series thumbnail
_WINDOW_FUNCTIONS: dict[str, WindowFunction] = {
    "linear": "linear",
    "linear-exact": "linear_exact",
    "sigmoid": "sigmoid",
}
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_WINDOW = re.compile(rf"({_NUMBER}),({_NUMBER})(?:,([a-z-]+))?")
_VIEWPORT = re.compile(r"([0-9]{1,5}),([0-9]{1,5})")


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
    """Negotiate, parse the parameters, locate (audited), then render off the event loop."""
    media_type = negotiate_rendered(request)
    query = request.query
    window = parse_window(query["window"]) if "window" in query else None
    viewport = parse_viewport(query["viewport"]) if "viewport" in query else default_viewport
    quality = parse_quality(query["quality"]) if "quality" in query else DEFAULT_QUALITY
    found = await lookup.locate(request, purpose)
    image = await asyncio.to_thread(
        _render_first,
        request.app[keys.ARCHIVE].storage,
        [item.sha256 for item in found[:MAX_CANDIDATES]],
        frame=frame,
        window=window,
        image_format=RENDERED_TYPES[media_type],
        viewport=viewport,
        quality=quality,
    )
    return web.Response(body=image, headers={hdrs.CONTENT_TYPE: media_type, hdrs.VARY: "Accept"})


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


def _render_first(
    storage: BlobStorage,
    digests: list[str],
    *,
    frame: int | None,
    window: Window | None,
    image_format: ImageFormat,
    viewport: Viewport | None,
    quality: int,
) -> bytes:
    """The image of the first stored blob that renders (blocking); else the last refusal."""
    refusal = NotRenderable("Nothing to render.")
    for sha256 in digests:
        with storage.open(sha256) as source:
            try:
                return render(
                    source,
                    frame=frame,
                    window=window,
                    image_format=image_format,
                    viewport=viewport,
                    quality=quality,
                )
            except RenderingError as error:
                if error.reason == "no_such_frame":
                    raise NotFound(error.message) from None
                if error.reason == "invalid_parameter":
                    raise MalformedInput(error.message) from None
                refusal = NotRenderable(error.message, details={"reason": error.reason})
    raise refusal
