"""Rendered images of DICOM instances (PS3.18 10.4): the grayscale and colour pipelines.

Grayscale frames go through the Modality LUT (Rescale Slope/Intercept or a
Modality LUT Sequence), then a VOI transform — the caller's window, else the
file's VOI LUT Sequence, else its first Window Center/Width, else the frame's
minimum to maximum — and MONOCHROME1 frames are inverted. Colour frames are
RGB (YBR is converted by the decoder) or PALETTE COLOR through its lookup
tables; a window applies to grayscale frames only. Frames are decoded one at a
time by pydicom's ``pixels`` backend, with pylibjpeg for compressed transfer
syntaxes. Every function blocks.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import UID

from dicom_tools.errors import ReasonedError
from dicom_tools.frames import frame_count

RenderingReason = Literal[
    "not_dicom",
    "no_pixel_data",
    "unsupported_transfer_syntax",
    "unsupported_photometric_interpretation",
    "undecodable",
    "no_such_frame",
    "invalid_parameter",
]
"""Stable codes of :class:`RenderingError`.

- ``not_dicom``: the bytes are not a readable Part 10 file.
- ``no_pixel_data``: the object has no image (ECG waveform, SR, encapsulated PDF...).
- ``unsupported_transfer_syntax``: no installed decoder handles the transfer syntax.
- ``unsupported_photometric_interpretation``: not MONOCHROME1/2, RGB, YBR or PALETTE COLOR.
- ``undecodable``: the pixel data or its lookup tables cannot be decoded.
- ``no_such_frame``: the frame number is outside 1..Number of Frames.
- ``invalid_parameter``: a window, viewport or quality the pipeline cannot use.
"""

WindowFunction = Literal["linear", "linear_exact", "sigmoid"]
ImageFormat = Literal["jpeg", "png"]
Pixels8 = npt.NDArray[np.uint8]

_FLOATS = npt.NDArray[np.float64]
_GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
_FILE_WINDOW_FUNCTIONS: dict[str, WindowFunction] = {
    "LINEAR": "linear",
    "LINEAR_EXACT": "linear_exact",
    "SIGMOID": "sigmoid",
}
# Attributes the grayscale pipeline reads, whether top level or in functional groups.
_PIPELINE_KEYWORDS = (
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
)
_FRAME_GROUPS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
MAX_VIEWPORT = 8192
_TABLE_ABOVE_PIXELS = 4096
"""Grayscale frames of more pixels may go through a table of their values (faster)."""
# PNG is lossless whatever the zlib settings: these trade a little size for speed. On a
# noisy 512x512 CT, level 1 with Z_RLE encodes about 6x faster than Pillow's default
# (level 6) and 8 % smaller; on a colour photograph Z_RLE is 40 % larger, so colour keeps
# zlib's default strategy (level 1: 3x faster, 3 % larger).
_PNG_OPTIONS: dict[str, dict[str, int]] = {
    "L": {"compress_level": 1, "compress_type": zlib.Z_RLE},
    "RGB": {"compress_level": 1},
}


class RenderingError(ReasonedError[RenderingReason]):
    """An instance cannot be rendered."""


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): center and width in modality units, and its function."""

    center: float
    width: float
    function: WindowFunction = "linear"

    def __post_init__(self) -> None:
        linear = self.function == "linear"
        wide_enough = self.width >= 1 if linear else self.width > 0
        if not (math.isfinite(self.center) and math.isfinite(self.width) and wide_enough):
            raise RenderingError(
                "invalid_parameter",
                f"A {self.function} window needs a finite center and a width "
                f"{'of at least 1' if linear else 'above 0'}, not {self.center}, {self.width}.",
            )

    def apply(self, values: npt.NDArray[Any]) -> _FLOATS:
        """Map modality values to 0..255 with this window's function."""
        x = values.astype(np.float64, copy=False)
        c, w = self.center, self.width
        if self.function == "sigmoid":
            return 127.5 * (1.0 + np.tanh(2.0 * (x - c) / w))
        if self.function == "linear_exact":
            return np.clip(((x - c) / w + 0.5) * 255.0, 0.0, 255.0)
        if w == 1.0:
            return np.where(x <= c - 0.5, 0.0, 255.0)
        return np.clip(((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0, 0.0, 255.0)


@dataclass(frozen=True, slots=True)
class Viewport:
    """The largest image to produce, in pixels; the aspect ratio is kept, never enlarged."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if not (1 <= self.width <= MAX_VIEWPORT and 1 <= self.height <= MAX_VIEWPORT):
            raise RenderingError(
                "invalid_parameter",
                f"A viewport is 1 to {MAX_VIEWPORT} pixels each way, "
                f"not {self.width}x{self.height}.",
            )

    def fit(self, columns: int, rows: int) -> tuple[int, int]:
        """The (width, height) of a columns x rows image scaled down to fit."""
        scale = min(1.0, self.width / columns, self.height / rows)
        return max(1, round(columns * scale)), max(1, round(rows * scale))


def render(
    source: bytes | BinaryIO,
    *,
    frame: int | None = None,
    window: Window | None = None,
    image_format: ImageFormat = "jpeg",
    viewport: Viewport | None = None,
    quality: int = 90,
) -> bytes:
    """Render one frame (1-based; default the representative one) as PNG or JPEG bytes."""
    return encode(
        render_frame(source, frame=frame, window=window),
        image_format=image_format,
        viewport=viewport,
        quality=quality,
    )


def render_frame(
    source: bytes | BinaryIO, *, frame: int | None = None, window: Window | None = None
) -> Pixels8:
    """One frame as 8-bit pixels: rows x columns (grayscale) or rows x columns x 3 (RGB)."""
    ds = _read(source)
    index = _frame_number(ds, frame) - 1
    pixels, photometric = _decode(ds, index)
    if photometric in _GRAYSCALE:
        return _grayscale(pixels, _frame_attributes(ds, index), window, photometric)
    if photometric == "PALETTE COLOR":
        return _palette(pixels, ds)
    if photometric == "RGB" and pixels.ndim == 3:
        return _scaled(pixels, int(ds.get("BitsStored") or pixels.dtype.itemsize * 8))
    raise RenderingError(
        "unsupported_photometric_interpretation",
        f"Photometric Interpretation {photometric!r} cannot be rendered.",
    )


def encode(
    pixels: Pixels8,
    *,
    image_format: ImageFormat = "jpeg",
    viewport: Viewport | None = None,
    quality: int = 90,
) -> bytes:
    """Encode 8-bit grayscale or RGB pixels as PNG or JPEG, scaled down into the viewport."""
    if not 1 <= quality <= 100:
        raise RenderingError("invalid_parameter", f"JPEG quality is 1 to 100, not {quality}.")
    image = Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")
    if viewport is not None:
        size = viewport.fit(image.width, image.height)
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if image_format == "png":
        image.save(out, "PNG", **_PNG_OPTIONS[image.mode])
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _read(source: bytes | BinaryIO) -> Dataset:
    """The whole dataset, refusing objects without a decodable image."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    stream.seek(0)
    try:
        ds = dcmread(stream)
    except Exception as error:  # pydicom raises many types on malformed input
        raise RenderingError("not_dicom", f"The object is not readable DICOM: {error}") from None
    if "PixelData" not in ds:
        kind = UID(str(ds.get("SOPClassUID", ""))).name or "This object"
        raise RenderingError(
            "no_pixel_data", f"{kind} has no pixel data, so there is no image to render."
        )
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise RenderingError(
            "unsupported_transfer_syntax",
            f"Pixel data in transfer syntax {syntax.name or syntax!r} cannot be decoded.",
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin"
        raise RenderingError(
            "unsupported_transfer_syntax",
            f"No decoder is installed for {syntax.name} ({missing}).",
        )
    return ds


def _frame_number(ds: Dataset, frame: int | None) -> int:
    """The requested frame, or the representative frame (else the first)."""
    try:
        count = frame_count(ds)
    except (TypeError, ValueError):
        count = 1
    if frame is None:
        representative = ds.get("RepresentativeFrameNumber")
        frame = int(representative) if representative and 1 <= representative <= count else 1
    if not 1 <= frame <= count:
        raise RenderingError(
            "no_such_frame", f"Frame {frame} does not exist; the instance has {count} frames."
        )
    return frame


def _decode(ds: Dataset, index: int) -> tuple[npt.NDArray[Any], str]:
    """One decoded frame (YBR converted to RGB) and the colour space it is now in."""
    try:
        decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
        pixels, meta = decoder.as_array(ds, index=index, raw=False, **as_pixel_options(ds))
    except Exception as error:  # codecs raise anything on corrupt data
        raise RenderingError("undecodable", f"The pixel data cannot be decoded: {error}") from None
    return pixels, str(meta.get("photometric_interpretation", ""))


def _frame_attributes(ds: Dataset, index: int) -> Dataset:
    """The pipeline attributes of one frame: top level, then shared, then per-frame groups."""
    attributes = Dataset()
    sources = [ds]
    for groups_keyword, item in (
        ("SharedFunctionalGroupsSequence", 0),
        ("PerFrameFunctionalGroupsSequence", index),
    ):
        groups = ds.get(groups_keyword)
        if groups and len(groups) > item:
            sources += [groups[item][k][0] for k in _FRAME_GROUPS if groups[item].get(k)]
    for source in sources:
        for keyword in _PIPELINE_KEYWORDS:
            if keyword in source:
                attributes[keyword] = source[keyword]
    return attributes


def _grayscale(
    pixels: npt.NDArray[Any], attributes: Dataset, window: Window | None, photometric: str
) -> Pixels8:
    """Modality LUT, VOI transform, then inversion of MONOCHROME1.

    An integer frame with fewer distinct possible values (its minimum to its maximum)
    than half its pixels goes through a table of those values instead: every step is
    elementwise, so each pixel gets exactly the value it would get on its own, and the
    frame's full range is taken over the values present only.
    """
    if pixels.dtype.kind in "iu" and pixels.size >= _TABLE_ABOVE_PIXELS:
        low, high = int(pixels.min()), int(pixels.max())
        if high - low < pixels.size // 2:
            index = np.subtract(pixels, low, dtype=np.intp)
            stored = np.arange(low, high + 1, dtype=pixels.dtype)
            table = _grayscale_values(stored, attributes, window, photometric, index)
            shown: Pixels8 = table[index]
            return shown
    return _grayscale_values(pixels, attributes, window, photometric, None)


def _grayscale_values(
    pixels: npt.NDArray[Any],
    attributes: Dataset,
    window: Window | None,
    photometric: str,
    index: npt.NDArray[np.intp] | None,
) -> Pixels8:
    """The grayscale pipeline of pixels (or of a table of values, ``index`` its pixels)."""
    try:
        values = apply_modality_lut(pixels, attributes)
        if window is None and attributes.get("VOILUTSequence"):
            bits = int(attributes.VOILUTSequence[0].LUTDescriptor[2])
            shown: _FLOATS = (
                apply_voi(values, attributes).astype(np.float64) * 255.0 / (2**bits - 1)
            )
        else:
            chosen = window or _file_window(attributes)
            if chosen is None:
                counts = (
                    None if index is None else np.bincount(index.ravel(), minlength=values.size)
                )
                present = values if counts is None else values[counts > 0]
                chosen = _full_range(present)
            shown = chosen.apply(values)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise RenderingError(
            "undecodable", f"The grayscale LUTs cannot be applied: {error}"
        ) from None
    if photometric == "MONOCHROME1":
        shown = 255.0 - shown
    return _rounded(shown)


def _file_window(attributes: Dataset) -> Window | None:
    """The first window stored in the file, if it has a usable one."""
    center, width = attributes.get("WindowCenter"), attributes.get("WindowWidth")
    if center is None or width is None:
        return None
    function = _FILE_WINDOW_FUNCTIONS.get(str(attributes.get("VOILUTFunction") or "LINEAR"))
    try:
        return Window(_first(center), _first(width), function or "linear")
    except (RenderingError, TypeError, ValueError, IndexError):
        return None


def _first(value: Any) -> float:
    """The first of a multi-valued number, or the number."""
    return float(value[0] if isinstance(value, MultiValue) else value)


def _full_range(values: npt.NDArray[Any]) -> Window:
    """A window from the frame's minimum to its maximum."""
    low, high = float(values.min()), float(values.max())
    return Window((low + high) / 2, max(high - low, 1e-6), "linear_exact")


def _palette(pixels: npt.NDArray[Any], ds: Dataset) -> Pixels8:
    """PALETTE COLOR indices through the red, green and blue lookup tables."""
    try:
        rgb = apply_color_lut(pixels, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise RenderingError("undecodable", f"The palette cannot be applied: {error}") from None
    return _scaled(rgb, bits)


def _scaled(pixels: npt.NDArray[Any], bits: int) -> Pixels8:
    """Unsigned samples of ``bits`` significant bits scaled to 0..255."""
    if bits == 8:
        return pixels.astype(np.uint8)
    top = float(2**bits - 1)
    return _rounded(np.clip(pixels, 0, top).astype(np.float64) * (255.0 / top))


def _rounded(values: _FLOATS) -> Pixels8:
    """Values in 0..255 rounded to 8-bit pixels."""
    rounded: _FLOATS = np.rint(values)
    return rounded.astype(np.uint8)
