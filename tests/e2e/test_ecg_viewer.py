"""The ECG viewer in Chromium: calibrated paper, layout/speed/gain, calipers, measurements.

Calibration is checked in CSS pixels: at zoom 100% one paper millimetre is one CSS
millimetre, 96 / 25.4 px (tolerance 0.5 px over the whole paper). Calipers are dragged
between points given in paper millimetres and must read the time and voltage those
millimetres mean at the chosen speed and gain (to the whole ms, 0.01 mV).
"""

from __future__ import annotations

import io
import re

import pydicom
import pytest
from playwright.async_api import Page, expect
from pydicom.uid import generate_uid

from tests.dicom_tools.part10 import bundled
from tests.e2e.conftest import Browser, publish_screenshot
from tests.server.dicomweb.helpers import multipart

pytestmark = pytest.mark.e2e

PX_PER_MM = 96 / 25.4
VIEWER = ".ecg-viewer[data-ecg-viewer-init]"
PAPER = ".ecg-paper-frame svg"
# The screen position (CSS px) of a point of the paper given in mm.
SCREEN_POINT = """([x, y]) => {
  const svg = document.querySelector(".ecg-paper-frame svg");
  const point = new DOMPoint(x, y).matrixTransform(svg.getScreenCTM());
  return [point.x, point.y];
}"""


def _ecg_instance() -> tuple[bytes, str, str]:
    """pydicom's 12-lead ECG with new UIDs in one of gp.river's patients: (bytes, study, SOP)."""
    ds = pydicom.dcmread(bundled("waveform_ecg.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID = "Viewer^Ecg", "ECG-E2E-1"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), ds.StudyInstanceUID, ds.SOPInstanceUID


async def _stow(browser: Browser, instance: bytes) -> None:
    page = browser.page
    body, content_type = multipart([instance])
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = await page.request.post(
        f"{browser.server.url}/dicom-web/studies",
        data=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": csrf or ""},
    )
    assert response.ok, await response.text()


async def _drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag the caliper from one paper point to another (both in mm)."""
    x0, y0 = await page.evaluate(SCREEN_POINT, list(start))
    x1, y1 = await page.evaluate(SCREEN_POINT, list(end))
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    await page.mouse.move(x1, y1, steps=5)
    await page.mouse.up()


async def _paper_size(page: Page) -> dict[str, float]:
    size: dict[str, float] = await page.evaluate(
        """() => {
          const svg = document.querySelector(".ecg-paper-frame svg");
          const box = svg.getBoundingClientRect();
          const view = svg.viewBox.baseVal;
          const pulse = svg.querySelector('[data-role="calibration"]').getBoundingClientRect();
          return {width: box.width, height: box.height, mmWide: view.width, mmHigh: view.height,
                  pulse: pulse.height};
        }"""
    )
    return size


async def test_ecg_paper_is_calibrated_and_calipers_read_ms_mv_bpm(browser: Browser) -> None:
    page = browser.page
    await page.set_viewport_size({"width": 1600, "height": 1000})
    await browser.sign_in("gp.river")
    instance, study_uid, sop_uid = _ecg_instance()
    await _stow(browser, instance)
    api = await page.request.get(f"{browser.server.url}/api/v1/ecg/{sop_uid}")
    assert api.ok
    ecg = await api.json()

    await page.goto(f"{browser.server.url}/studies/{study_uid}/view")
    await expect(page.locator(VIEWER)).to_be_visible()
    await expect(page.locator(PAPER)).to_be_visible()
    await expect(page.locator(f"{VIEWER}[data-paper='3x4 25 10']")).to_have_count(1)

    # 1 paper mm = 1 CSS mm at 100%; the calibration pulse is 1 mV = 10 mm at 10 mm/mV.
    size = await _paper_size(page)
    assert abs(size["width"] - size["mmWide"] * PX_PER_MM) <= 0.5
    assert abs(size["height"] - size["mmHigh"] * PX_PER_MM) <= 0.5
    assert abs(size["pulse"] - 10 * PX_PER_MM) <= 0.5
    leads = await page.locator(f"{PAPER} [data-lead]").evaluate_all(
        "paths => [...new Set(paths.map((p) => p.dataset.lead))]"
    )
    assert set(leads) == {lead["name"] for lead in ecg["leads"]}

    # 25 mm at 25 mm/s is 1000 ms (60 bpm); 10 mm up at 10 mm/mV is 1 mV.
    reading = page.locator(".ecg-caliper-reading")
    await _drag(page, (60, 80), (85, 70))
    await expect(reading).to_have_text("1000 ms · 1.00 mV · 60 bpm")

    # At 50 mm/s and 20 mm/mV the same millimetres are half the time and half the voltage.
    await page.get_by_label("Speed").select_option("50")
    await page.get_by_label("Gain").select_option("20")
    await expect(page.locator(f"{VIEWER}[data-paper='3x4 50 20']")).to_have_count(1)
    size = await _paper_size(page)
    assert abs(size["pulse"] - 20 * PX_PER_MM) <= 0.5
    await _drag(page, (60, 80), (85, 70))
    await expect(reading).to_have_text("500 ms · 0.50 mV · 120 bpm")

    # Zoom doubles the CSS size; the paper millimetres (and so the caliper) stay calibrated.
    await page.get_by_label("Speed").select_option("25")
    await page.get_by_label("Gain").select_option("10")
    await page.get_by_label("Layout").select_option("12x1")
    await expect(page.locator(f"{VIEWER}[data-paper='12x1 25 10']")).to_have_count(1)
    await page.get_by_role("button", name="Zoom in").click()
    await page.get_by_role("button", name="Zoom in").click()
    await expect(page.locator(".ecg-zoom")).to_have_text("200%")
    size = await _paper_size(page)
    assert abs(size["width"] - 2 * size["mmWide"] * PX_PER_MM) <= 1
    await _drag(page, (40, 30), (60, 30))
    await expect(reading).to_have_text(re.compile(r"^800 ms · 0\.00 mV · 75 bpm$"))
    await page.get_by_role("button", name="Actual size").click()

    # The keyboard: Escape clears, an arrow starts a 10 mm caliper, Shift moves by 0.2 mm.
    paper = page.locator(".ecg-paper-frame")
    await paper.focus()
    await paper.press("Escape")
    await expect(page.locator(f"{PAPER} [data-role=caliper] line")).to_have_count(0)
    await paper.press("ArrowRight")
    await expect(reading).to_have_text("400 ms · 0.00 mV · 150 bpm")
    await paper.press("Shift+ArrowRight")
    await expect(reading).to_have_text("408 ms · 0.00 mV · 147 bpm")
    await paper.press("ArrowUp")
    await expect(reading).to_have_text("408 ms · 0.10 mV · 147 bpm")

    # The measurements panel: automatic beside the device's, the reader's value editable.
    await expect(page.locator(f"{VIEWER}[data-measurements-loaded]")).to_have_count(1)
    rate = page.locator('tr[data-measurement="heart_rate_bpm"]')
    automatic = ecg["measurements"]["heart_rate_bpm"]
    device = ecg["device_measurements"]["heart_rate_bpm"]
    assert automatic is not None
    assert device is not None
    await expect(rate.locator(".ecg-automatic")).to_have_text(str(round(automatic)))
    await expect(rate.locator(".ecg-device")).to_have_text(str(round(device)))
    value = rate.locator("input")
    await expect(value).to_have_value(str(round(automatic)))
    await value.fill(str(round(automatic) + 5))
    await expect(rate).to_have_class(re.compile(r"\becg-corrected\b"))
    statements = ecg["device_measurements"]["statements"]
    assert statements  # waveform_ecg.dcm states its interpretation
    await expect(page.locator(".ecg-statements li")).to_have_text(statements)

    path = await browser.screenshot("ecg-viewer")
    publish_screenshot(path, "ecg-viewer.png")
    assert browser.console_errors == []
