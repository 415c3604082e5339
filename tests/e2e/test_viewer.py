"""The image viewer in Chromium: the browser's pixels against the server's, W/L drag, frames, mm.

GOLDEN: for each photometric interpretation the canvas (at 1:1, no smoothing) is read back
and compared with the server's ``rendered`` PNG for the same window: the mean absolute
difference must be at most 1 grey level (per channel for colour). The measured figures are
written to tests/artifacts/viewer-golden.json.
"""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.async_api import Page, Request, expect
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.dicom_tools.part10 import bundled
from tests.e2e.conftest import ARTIFACTS, DEMO_PASSWORD, Browser, DemoServer, publish_screenshot
from tests.server.dicomweb.helpers import multipart

pytestmark = pytest.mark.e2e

MAX_MEAN_DELTA = 1.0
"""Mean |browser - server| in grey levels (per channel for colour) a golden case may reach."""
VIEWPORT = {"width": 1280, "height": 900}
CANVAS = "[data-viewer-canvas]"
READ_CANVAS = """([columns, rows]) => {
  const canvas = document.querySelector("[data-viewer-canvas]");
  const x = Math.round(canvas.width / 2 - columns / 2);
  const y = Math.round(canvas.height / 2 - rows / 2);
  const data = canvas.getContext("2d").getImageData(x, y, columns, rows).data;
  let text = "";
  for (let i = 0; i < data.length; i += 1) text += String.fromCharCode(data[i]);
  return btoa(text);
}"""


@dataclass(frozen=True)
class Stored:
    """An instance the test stored, and where its pieces are."""

    name: str
    ds: Dataset
    series_number: int

    @property
    def instance_url(self) -> str:
        ds = self.ds
        return (
            f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )

    @property
    def view_url(self) -> str:
        return f"/studies/{self.ds.StudyInstanceUID}/view?series={self.ds.SeriesInstanceUID}"


def _moved(ds: Dataset, study_uid: str, series_number: int, description: str) -> Dataset:
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    # One patient and study for every case (the archive refuses a study that disagrees).
    ds.PatientName, ds.PatientID = "Golden^Viewer", "VG-1"
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20260101", "0900", "", ""
    ds.StudyDescription = "Viewer golden cases"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = 1
    return ds


def _native(ds: Dataset, pixels: np.ndarray, photometric: str, *, planar: bool = False) -> None:
    """Replace the pixel data by uncompressed 8-bit colour samples."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = 1 if planar else 0
    ds.PixelData = (pixels.transpose(2, 0, 1) if planar else pixels).astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"


def _with_lut(ds: Dataset, sequence: str) -> Dataset:
    """CT_small with a Modality LUT Sequence (instead of rescale) or a VOI LUT Sequence.

    LUT Data is US: rendering.py cannot apply OW LUT Data (pydicom asks for the endianness of
    the attributes dataset it builds, which has no File Meta), the viewer reads both.
    """
    item = Dataset()
    stored = ds.pixel_array
    if sequence == "ModalityLUTSequence":
        del ds.RescaleSlope, ds.RescaleIntercept
        first, count = int(stored.min()), int(stored.max() - stored.min()) + 1
        item.add_new(0x00283002, "US", [count, first, 16])
        item.add_new(0x00283006, "US", [min(65535, i * 3 // 2) for i in range(count)])
        item.ModalityLUTType = "HU"
    else:
        item.add_new(0x00283002, "US", [2048, 0, 12])
        item.add_new(0x00283006, "US", [int(4095 * (i / 2047) ** 0.5) for i in range(2048)])
    setattr(ds, sequence, Sequence([item]))
    return ds


def _golden_files(study_uid: str) -> list[tuple[str, Dataset]]:
    """(name, dataset) of one instance per photometric interpretation under test."""
    ct = pydicom.dcmread(bundled("CT_small.dcm"))
    mono1 = pydicom.dcmread(bundled("MR_small.dcm"))
    mono1.PhotometricInterpretation = "MONOCHROME1"
    sigmoid = pydicom.dcmread(bundled("MR_small.dcm"))
    sigmoid.VOILUTFunction = "SIGMOID"
    rgb = pydicom.dcmread(bundled("SC_rgb_rle.dcm"))
    _native(rgb, rgb.pixel_array, "RGB", planar=True)
    ybr_jpeg = pydicom.dcmread(bundled("SC_rgb_jpeg_dcmtk.dcm"))
    ybr = pydicom.dcmread(bundled("SC_rgb_jpeg_gdcm.dcm"))
    _native(ybr, convert_color_space(ybr.pixel_array, "RGB", "YBR_FULL"), "YBR_FULL")
    cases = [
        ("MONOCHROME2 CT (rescale)", ct),
        ("MONOCHROME1", mono1),
        ("MONOCHROME2 SIGMOID window", sigmoid),
        (
            "Modality LUT Sequence",
            _with_lut(pydicom.dcmread(bundled("CT_small.dcm")), "ModalityLUTSequence"),
        ),
        ("VOI LUT Sequence", _with_lut(pydicom.dcmread(bundled("CT_small.dcm")), "VOILUTSequence")),
        ("RGB (native, planar)", rgb),
        ("YBR_FULL JPEG baseline", ybr_jpeg),
        ("YBR_FULL native", ybr),
        ("PALETTE COLOR", pydicom.dcmread(bundled("examples_palette.dcm"))),
        ("YBR_FULL_422 JPEG multi-frame", pydicom.dcmread(bundled("examples_ybr_color.dcm"))),
    ]
    return [(name, _moved(ds, study_uid, n + 1, name)) for n, (name, ds) in enumerate(cases)]


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def study(demo_server: DemoServer) -> dict[str, Stored]:
    """One study of gp.river's clinic with a series per case, stored through STOW-RS."""
    study_uid = generate_uid()
    files = _golden_files(study_uid)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    login = urllib.request.Request(
        f"{demo_server.url}/api/v1/auth/login",
        data=json.dumps({"username": "gp.river", "password": DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with opener.open(login, timeout=30) as response:
        csrf = json.loads(response.read())["csrf_token"]
    body, content_type = multipart([_bytes(ds) for _, ds in files])
    stow = urllib.request.Request(
        f"{demo_server.url}/dicom-web/studies",
        data=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": csrf},
    )
    try:
        opener.open(stow, timeout=60).close()
    except urllib.error.HTTPError as error:
        pytest.fail(f"STOW-RS {error.code}: {error.read().decode()}")
    return {name: Stored(name, ds, n + 1) for n, (name, ds) in enumerate(files)}


def _origin(page: Page) -> str:
    found = re.match(r"https?://[^/]+", page.url)
    assert found, page.url
    return found.group(0)


async def _server_png(page: Page, url: str) -> np.ndarray:
    """A rendered PNG fetched by the signed-in page, decoded in Python."""
    response = await page.request.get(_origin(page) + url, headers={"Accept": "image/png"})
    assert response.ok, await response.text()
    return np.asarray(Image.open(io.BytesIO(await response.body())))


async def _signed_in(browser: Browser) -> Page:
    """gp.river's page, at a desktop size where every test image fits the canvas at 1:1."""
    await browser.page.set_viewport_size(VIEWPORT)
    await browser.sign_in("gp.river")
    return browser.page


async def _stow(page: Page, instances: list[bytes]) -> None:
    """Store instances through STOW-RS as the signed-in page's user."""
    body, content_type = multipart(instances)
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = await page.request.post(
        _origin(page) + "/dicom-web/studies",
        data=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": csrf or ""},
    )
    assert response.ok, await response.text()


async def _canvas(page: Page, columns: int, rows: int) -> np.ndarray:
    raw = base64.b64decode(await page.evaluate(READ_CANVAS, [columns, rows]))
    return np.frombuffer(raw, dtype=np.uint8).reshape(rows, columns, 4)


async def _open(page: Page, url: str, frames: int = 1) -> None:
    await page.goto(_origin(page) + url)
    await expect(page.locator("[data-viewer-frame-text]")).to_have_text(
        re.compile(rf"^Frame 1 of {frames}\b")
    )
    await expect(page.locator("[data-viewer-zoom-text]")).to_have_text(re.compile(r"Zoom \d+%"))


async def _one_to_one(page: Page) -> None:
    await page.get_by_role("button", name="1:1").click()
    await expect(page.locator("[data-viewer-zoom-text]")).to_have_text("Zoom 100%")


def _delta(canvas: np.ndarray, server: np.ndarray) -> float:
    shown = canvas[..., 0] if server.ndim == 2 else canvas[..., :3]
    assert shown.shape == server.shape
    return float(np.abs(shown.astype(np.int16) - server.astype(np.int16)).mean())


def _window_text(window: tuple[float, float]) -> str:
    center, width = window
    return f"W {width:g} L {center:g}"


def _full_range(ds: Dataset) -> str:
    """The window= parameter of the frame's minimum to maximum (rendering.py `_full_range`)."""
    values = ds.pixel_array.astype(np.float64)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        values = values * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    low, high = float(values.min()), float(values.max())
    return f"{(low + high) / 2!r},{max(high - low, 1e-6)!r},linear-exact"


async def test_browser_pixels_equal_the_servers_rendering(
    browser: Browser, study: dict[str, Stored]
) -> None:
    page = await _signed_in(browser)
    results: dict[str, float] = {}
    # (case, preset label in the Window list or None for the default, server window=, frame)
    windows: list[tuple[str, str | None, str | None, int]] = [
        ("MONOCHROME2 CT (rescale)", None, None, 1),
        ("MONOCHROME2 CT (rescale)", "Mediastinum (40/400)", "40,400", 1),
        ("MONOCHROME2 CT (rescale)", "Lung (-600/1500)", "-600,1500", 1),
        ("MONOCHROME1", None, None, 1),
        ("MONOCHROME1", "Full range", _full_range(study["MONOCHROME1"].ds), 1),
        ("MONOCHROME2 SIGMOID window", None, None, 1),
        ("Modality LUT Sequence", None, None, 1),
        ("Modality LUT Sequence", "Bone (400/1800)", "400,1800", 1),
        ("VOI LUT Sequence", None, None, 1),
        ("VOI LUT Sequence", "Brain (40/80)", "40,80", 1),
        ("RGB (native, planar)", None, None, 1),
        ("YBR_FULL JPEG baseline", None, None, 1),
        ("YBR_FULL native", None, None, 1),
        ("PALETTE COLOR", None, None, 1),
        ("YBR_FULL_422 JPEG multi-frame", None, None, 7),
    ]
    opened = None
    for name, preset, window, frame in windows:
        stored = study[name]
        frames = int(stored.ds.get("NumberOfFrames") or 1)
        if opened != name:
            await _open(page, stored.view_url, frames)
            await _one_to_one(page)
            opened = name
        if frame > 1:
            await page.locator(CANVAS).focus()
            for _ in range(frame - 1):
                await page.keyboard.press("ArrowDown")
            await expect(page.locator("[data-viewer-frame-text]")).to_have_text(
                re.compile(rf"^Frame {frame} of {frames}\b")
            )
        if preset:
            await page.get_by_label("Window", exact=True).select_option(label=preset)
            if "," in (window or "") and preset != "Full range":
                center, width = (float(v) for v in window.split(",")[:2])  # type: ignore[union-attr]
                await expect(page.locator("[data-viewer-window-text]")).to_have_text(
                    _window_text((center, width))
                )
        url = stored.instance_url + (f"/frames/{frame}" if frames > 1 else "") + "/rendered"
        server = await _server_png(page, url + (f"?window={window}" if window else ""))
        rows, columns = server.shape[:2]
        canvas = await _canvas(page, columns, rows)
        delta = _delta(canvas, server)
        results[f"{name}, {preset or 'default window'}, frame {frame}"] = round(delta, 4)
        if preset and preset.startswith("Lung"):
            lung = canvas
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "viewer-golden.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    assert {k: v for k, v in results.items() if v > MAX_MEAN_DELTA} == {}
    # The comparison can fail: the lung window is far from the server's default rendering.
    ct = study["MONOCHROME2 CT (rescale)"]
    assert _delta(lung, await _server_png(page, ct.instance_url + "/rendered")) > 10


async def test_drag_window_view_transforms_and_length(
    browser: Browser, study: dict[str, Stored]
) -> None:
    page = await _signed_in(browser)
    ct = study["MONOCHROME2 CT (rescale)"]
    await _open(page, ct.view_url)
    await _one_to_one(page)
    await page.wait_for_load_state("networkidle")
    before = await page.locator("[data-viewer-window-text]").text_content()
    requests: list[str] = []

    def seen(request: Request) -> None:
        requests.append(request.url)

    page.on("request", seen)
    box = await page.locator(CANVAS).bounding_box()
    assert box
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    for step in range(1, 11):
        await page.mouse.move(x - 8 * step, y + 4 * step)
    await page.mouse.up()
    after = page.locator("[data-viewer-window-text]")
    await expect(after).not_to_have_text(before or "")
    page.remove_listener("request", seen)
    assert requests == []
    found = re.fullmatch(r"W (\S+) L (\S+)", await after.text_content() or "")
    assert found, await after.text_content()
    width, center = float(found.group(1)), float(found.group(2))
    # The dragged window is the server's window too.
    server = await _server_png(page, ct.instance_url + f"/rendered?window={center!r},{width!r}")
    assert _delta(await _canvas(page, 128, 128), server) <= MAX_MEAN_DELTA
    status = page.locator("[data-viewer-status]")
    await expect(status).to_have_text(f"Frame 1 of 1. W {found.group(1)} L {found.group(2)}.")
    # Rotation, flips and inversion move the same pixels, exactly.
    await page.locator(CANVAS).focus()
    for key, expected in (
        ("r", np.rot90(server, -1)),
        ("r", np.rot90(server, 2)),
        ("r", np.rot90(server, 1)),
        ("r", server),
        ("h", np.fliplr(server)),
        ("v", np.flipud(np.fliplr(server))),
        ("i", 255 - np.flipud(np.fliplr(server))),
    ):
        await page.keyboard.press(key)
        assert _delta(await _canvas(page, 128, 128), expected) == 0, key
    await page.get_by_role("button", name="Reset").click()
    await expect(after).to_have_text(before or "")
    await expect(page.get_by_role("button", name="Invert")).to_have_attribute(
        "aria-pressed", "false"
    )
    # A length on a file with Pixel Spacing, in mm.
    await _one_to_one(page)
    await page.get_by_role("button", name="Length").click()
    size = await page.evaluate(
        "() => { const c = document.querySelector('[data-viewer-canvas]');"
        " return [c.width, c.height, c.getBoundingClientRect().width]; }"
    )
    assert size[0] == size[2], "one canvas pixel per CSS pixel at device pixel ratio 1"
    box = await page.locator(CANVAS).bounding_box()
    assert box
    # Image pixel (10, 20) to (110, 80) at 1:1.
    left = box["x"] + round(size[0] / 2 - 64)
    top = box["y"] + round(size[1] / 2 - 64)
    await page.mouse.move(left + 10, top + 20)
    await page.mouse.down()
    await page.mouse.move(left + 60, top + 50)
    await page.mouse.move(left + 110, top + 80)
    await page.mouse.up()
    spacing = [float(v) for v in ct.ds.PixelSpacing]  # row spacing, column spacing
    length_mm = float(np.hypot(100 * spacing[1], 60 * spacing[0]))
    await expect(page.get_by_role("list", name="Measurements")).to_have_text(
        f"Length 1: {length_mm:.1f} mm"
    )
    # An angle: a drag for the first arm (its end is the vertex), a click for the second.
    await page.keyboard.press("a")
    await page.mouse.move(left + 20, top + 100)
    await page.mouse.down()
    await page.mouse.move(left + 60, top + 100)
    await page.mouse.up()
    await page.mouse.click(left + 60, top + 60)
    await expect(
        page.get_by_role("list", name="Measurements").get_by_role("listitem")
    ).to_have_text([f"Length 1: {length_mm:.1f} mm", "Angle 2: 90.0°"])
    await page.get_by_role("button", name="Fit").click()
    path = await browser.screenshot("viewer-ct", full_page=False)
    publish_screenshot(path, "viewer.png")
    # Without Pixel Spacing a length is in pixels, and says so.
    await _open(page, study["YBR_FULL_422 JPEG multi-frame"].view_url, 30)
    await _one_to_one(page)
    await page.keyboard.press("l")
    box = await page.locator(CANVAS).bounding_box()
    assert box
    await page.mouse.move(box["x"] + 300, box["y"] + 200)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 340, box["y"] + 230)
    await page.mouse.up()
    await expect(page.get_by_role("list", name="Measurements")).to_have_text(
        "Length 1: 50 px (uncalibrated)"
    )


async def test_frames_scroll_with_wheel_and_keys(
    browser: Browser, study: dict[str, Stored]
) -> None:
    page = await _signed_in(browser)
    await _open(page, study["YBR_FULL_422 JPEG multi-frame"].view_url, 30)
    frame = page.locator("[data-viewer-frame-text]")
    box = await page.locator(CANVAS).bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.wheel(0, 100)
    await expect(frame).to_have_text(re.compile(r"^Frame 2 of 30\b"))
    await page.mouse.wheel(0, 300)
    await expect(frame).to_have_text(re.compile(r"^Frame 5 of 30\b"))
    await page.mouse.wheel(0, -100)
    await expect(frame).to_have_text(re.compile(r"^Frame 4 of 30\b"))
    for key, expected in (("ArrowDown", 5), ("PageDown", 15), ("ArrowUp", 14), ("End", 30)):
        await page.keyboard.press(key)
        await expect(frame).to_have_text(re.compile(rf"^Frame {expected} of 30\b"))
    await page.keyboard.press("Home")
    await expect(frame).to_have_text(re.compile(r"^Frame 1 of 30\b"))
    slider = page.get_by_role("slider", name="Frame")
    await slider.fill("12")
    await expect(frame).to_have_text(re.compile(r"^Frame 12 of 30\b"))
    # Cine plays through the frames and stops again.
    await page.get_by_role("button", name="Play").click()
    await expect(frame).not_to_have_text(re.compile(r"^Frame 12 of 30\b"))
    await page.get_by_role("button", name="Pause").click()
    # The whole series is prefetched in the background.
    await expect(page.locator("[data-viewer-load-text]")).to_have_text("", timeout=20_000)
    await page.keyboard.press("?")
    help_panel = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_panel).to_be_visible()
    await expect(help_panel).to_contain_text("Previous / next frame")
    await page.keyboard.press("Escape")
    await expect(help_panel).to_be_hidden()


async def test_tablet_layout_and_touch(browser: Browser, study: dict[str, Stored]) -> None:
    page = browser.page
    await page.set_viewport_size({"width": 820, "height": 1180})
    cdp = await browser.context.new_cdp_session(page)
    await cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    await browser.sign_in("gp.river")
    ct = study["MONOCHROME2 CT (rescale)"]
    await _open(page, ct.view_url)
    strip = await page.get_by_role("navigation", name="Series").bounding_box()
    stage = await page.locator("[data-viewer-stage]").bounding_box()
    assert strip
    assert stage
    assert strip["y"] + strip["height"] <= stage["y"], "the series strip is above the image"
    assert stage["width"] > 700, "the image uses the tablet's width"
    for name in ("W/L", "Length", "Rotate", "Reset"):
        button = await page.get_by_role("button", name=name, exact=True).bounding_box()
        assert button, name
        assert button["height"] >= 44, name
        assert button["width"] >= 44, name
    path = await browser.screenshot("viewer-tablet", full_page=False)
    publish_screenshot(path, "viewer-tablet.png")
    zoom = page.locator("[data-viewer-zoom-text]")
    before = await zoom.text_content()
    x, y = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2

    async def touch(kind: str, points: list[tuple[float, float]]) -> None:
        await cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": [{"x": px, "y": py, "id": i} for i, (px, py) in enumerate(points)],
            },
        )

    # Two fingers apart: pinch zoom.
    await touch("touchStart", [(x - 40, y), (x + 40, y)])
    for step in range(1, 6):
        await touch("touchMove", [(x - 40 - 20 * step, y), (x + 40 + 20 * step, y)])
    await touch("touchEnd", [])
    await expect(zoom).not_to_have_text(before or "")
    zoomed = int(re.sub(r"\D", "", await zoom.text_content() or ""))
    assert zoomed > int(re.sub(r"\D", "", before or "")), (before, zoomed)
    # One finger: window/level.
    window = page.locator("[data-viewer-window-text]")
    level = await window.text_content()
    await touch("touchStart", [(x, y)])
    for step in range(1, 6):
        await touch("touchMove", [(x + 15 * step, y + 10 * step)])
    await touch("touchEnd", [])
    await expect(window).not_to_have_text(level or "")


def _huge_multiframe(frames: int) -> bytes:
    """A 64x64 8-bit multi-frame of ``frames`` frames, each frame's grey level its number."""
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds = _moved(ds, generate_uid(), 1, "Huge multi-frame")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"  # Multi-frame Grayscale Byte SC
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = 40
    pixels = np.repeat(np.arange(frames, dtype=np.uint8), 64 * 64)
    pixels.reshape(frames, 64, 64)[:, :32, :32] = 255  # a corner, so no frame is flat
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OB"
    return _bytes(ds)


async def test_a_huge_multiframe_is_fetched_on_demand(browser: Browser) -> None:
    page = await _signed_in(browser)
    data = _huge_multiframe(1000)
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    await _stow(page, [data])
    frames: list[str] = []
    page.on("request", lambda r: frames.append(r.url) if "/frames/" in r.url else None)
    await _open(page, f"/studies/{ds.StudyInstanceUID}/view", 1000)
    await page.locator(CANVAS).focus()
    await page.keyboard.press("End")
    frame = page.locator("[data-viewer-frame-text]")
    await expect(frame).to_have_text(re.compile(r"^Frame 1000 of 1000\b"))
    await page.keyboard.press("PageUp")
    await expect(frame).to_have_text(re.compile(r"^Frame 990 of 1000\b"))
    await page.wait_for_load_state("networkidle")
    # Frames around the current one, not the whole instance: at most two prefetch windows.
    assert 3 <= len(set(frames)) <= 2 * 24 + 3, len(set(frames))
    await expect(page.locator("[data-viewer-load-text]")).to_have_text(
        re.compile(r"^Loaded \d+ of 1000 frames$")
    )


async def test_a_stack_is_ordered_along_the_slice_normal(browser: Browser) -> None:
    page = await _signed_in(browser)
    study_uid, series_uid = generate_uid(), generate_uid()
    stack = {}
    for z, shift in ((30.0, 300), (10.0, 0), (20.0, 600)):  # stored out of order
        ds = _moved(pydicom.dcmread(bundled("CT_small.dcm")), study_uid, 1, "Stack")
        ds.SeriesInstanceUID = series_uid
        del ds.InstanceNumber  # no numbers: the position along the normal orders the slices
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, z]
        ds.RescaleIntercept = -1024 + shift
        stack[z] = ds
    await _stow(page, [_bytes(ds) for ds in stack.values()])
    await _open(page, f"/studies/{study_uid}/view", 3)
    await _one_to_one(page)
    await page.get_by_label("Window", exact=True).select_option(label="Mediastinum (40/400)")
    frame = page.locator("[data-viewer-frame-text]")
    for index, z in enumerate(sorted(stack)):
        if index:
            await page.locator(CANVAS).focus()
            await page.keyboard.press("ArrowDown")
        await expect(frame).to_have_text(re.compile(rf"^Frame {index + 1} of 3\b"))
        ds = stack[z]
        url = Stored("stack", ds, 1).instance_url + "/rendered?window=40,400"
        assert _delta(await _canvas(page, 128, 128), await _server_png(page, url)) == 0, z
