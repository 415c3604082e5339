"""dicom_tools.ecg_svg: ECG paper in millimetres, calibrated pulses and traces, escaped text.

The SVG is parsed back here (ElementTree and a regular expression of this file's
own, not the module's): the calibration pulse must be exactly gain mm high and
0.2 s x speed wide, and every point of a trace must be the lead's whole
microvolts at the speed and gain, within 0.001 mm (the 3 decimals written).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from dicom_tools.ecg import LEAD_NAMES, Ecg, read_ecg, whole_microvolts
from dicom_tools.ecg_measurements import Measurements
from dicom_tools.ecg_svg import Header, SvgError, render_svg
from tests.dicom_tools.ecg_files import channel, ecg_with, encoded, group, synthetic
from tests.dicom_tools.part10 import bundled

NS = {"svg": "http://www.w3.org/2000/svg"}
TOLERANCE_MM = 0.001
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def ecg() -> Ecg:
    return read_ecg(bundled("waveform_ecg.dcm").read_bytes())


def _points(d: str) -> np.ndarray:
    assert re.fullmatch(r"M [-\d. ]+?(?: L [-\d. ]+)?", d), d[:80]
    return np.array([float(n) for n in _NUMBER.findall(d)]).reshape(-1, 2)


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def _paths(root: ET.Element, **attributes: str) -> list[ET.Element]:
    found = root.findall(".//svg:path", NS)
    return [p for p in found if all(p.get(k.replace("_", "-")) == v for k, v in attributes.items())]


@pytest.mark.parametrize("layout", ["3x4", "12x1"])
@pytest.mark.parametrize("speed", [25.0, 50.0])
@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_calibration_pulse_is_one_millivolt_high_and_200_ms_wide(
    ecg: Ecg, layout: str, speed: float, gain: float
) -> None:
    root = _svg(render_svg(ecg, layout=layout, speed=speed, gain=gain))  # type: ignore[arg-type]
    pulses = _paths(root, data_role="calibration")
    assert len(pulses) == (4 if layout == "3x4" else 12)
    for pulse in pulses:
        points = _points(pulse.get("d", ""))
        assert len(points) == 4
        height = points[:, 1].max() - points[:, 1].min()
        width = points[:, 0].max() - points[:, 0].min()
        assert height == pytest.approx(gain, abs=1e-9)  # 1 mV at gain mm/mV
        assert width == pytest.approx(0.2 * speed, abs=1e-9)  # 200 ms at speed mm/s


def _row_baselines(root: ET.Element) -> list[float]:
    return [_points(p.get("d", ""))[0, 1] for p in _paths(root, data_role="calibration")]


@pytest.mark.parametrize("speed", [25.0, 50.0])
@pytest.mark.parametrize("gain", [10.0, 20.0])
def test_3x4_traces_are_the_samples_at_speed_and_gain(ecg: Ecg, speed: float, gain: float) -> None:
    root = _svg(render_svg(ecg, layout="3x4", speed=speed, gain=gain))
    baselines = _row_baselines(root)
    frequency = ecg.sampling_frequency
    traces = [p for p in _paths(root) if p.get("data-lead")]
    assert [(p.get("data-lead"), p.get("data-role")) for p in traces] == [
        *((name, None) for name in ("I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5")),
        *((name, None) for name in ("III", "aVF", "V3", "V6")),
        ("II", "rhythm"),
    ]
    x0 = _points(traces[0].get("d", ""))[0, 0]  # lead I starts at t = 0
    for index, trace in enumerate(traces):
        name = trace.get("data-lead", "")
        row, column = (3, 0) if trace.get("data-role") == "rhythm" else divmod(index, 4)
        points = _points(trace.get("d", ""))
        start = 0 if row == 3 else round(column * 2.5 * frequency)
        count = 10_000 if row == 3 else 2500  # every sample: no downsampling
        assert len(points) == count, name
        lead = ecg.lead(name)
        assert lead is not None
        microvolts = whole_microvolts(lead.samples_uv)[start : start + count]
        t = np.arange(start, start + count) / frequency
        np.testing.assert_allclose(points[:, 0], x0 + t * speed, rtol=0, atol=TOLERANCE_MM)
        expected_y = baselines[row] - microvolts / 1000.0 * gain
        np.testing.assert_allclose(points[:, 1], expected_y, rtol=0, atol=TOLERANCE_MM)


@pytest.mark.parametrize("speed", [25.0, 50.0])
def test_12x1_has_every_lead_full_length(ecg: Ecg, speed: float) -> None:
    root = _svg(render_svg(ecg, layout="12x1", speed=speed, gain=10.0))
    baselines = _row_baselines(root)
    traces = [p for p in _paths(root) if p.get("data-lead")]
    assert [p.get("data-lead") for p in traces] == list(LEAD_NAMES)
    x0 = _points(traces[0].get("d", ""))[0, 0]
    for row, trace in enumerate(traces):
        points = _points(trace.get("d", ""))
        lead = ecg.leads[row]
        t = np.arange(len(lead.samples_uv)) / ecg.sampling_frequency
        np.testing.assert_allclose(points[:, 0], x0 + t * speed, rtol=0, atol=TOLERANCE_MM)
        expected_y = baselines[row] - whole_microvolts(lead.samples_uv) / 1000.0 * 10.0
        np.testing.assert_allclose(points[:, 1], expected_y, rtol=0, atol=TOLERANCE_MM)


def test_size_is_in_millimetres_and_numbers_have_three_decimals_at_most(ecg: Ecg) -> None:
    text = render_svg(ecg, layout="3x4", speed=25.0, gain=10.0)
    root = _svg(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    width, height = root.get("width", ""), root.get("height", "")
    assert re.fullmatch(r"\d+(\.\d+)?mm", width)
    assert re.fullmatch(r"\d+(\.\d+)?mm", height)
    assert root.get("viewBox") == f"0 0 {width[:-2]} {height[:-2]}"
    assert 250 < float(width[:-2]) < 300  # 10 s at 25 mm/s and the margins: landscape A4
    for path in _paths(root):
        assert not re.search(r"\.\d{4}", path.get("d", ""))
    grid = "".join(p.get("d", "") for p in _paths(root) if "grid" in (p.get("data-role") or ""))
    assert 0 < len(grid) < 20_000  # two paths, not a rectangle per square
    assert "style" not in text  # presentation attributes only: no style-src needed
    assert not root.findall(".//svg:script", NS)
    wide = _svg(render_svg(ecg, layout="3x4", speed=50.0, gain=10.0))
    assert float(wide.get("width", "")[:-2]) > float(width[:-2]) + 240  # 10 s more at 50 mm/s


def test_text_is_escaped_and_inert(ecg: Ecg) -> None:
    hostile = '<script>alert("x")</script> & <img src=x onerror=alert(1)>\x00\x07'
    header = Header(
        patient_name=hostile, patient_id="</text><script>1</script>", birth_date="1 Jan 1970"
    )
    text = render_svg(ecg, header=header)
    assert "<script" not in text
    assert "<img" not in text
    root = _svg(text)  # still well-formed XML: the control characters are gone
    assert not root.findall(".//svg:script", NS)
    assert not root.findall(".//svg:img", NS)
    texts = [t.text or "" for t in root.findall(".//svg:text", NS)]
    expected = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    assert any(expected in line for line in texts)
    assert any("ID </text><script>1</script>" in line for line in texts)


def test_measurements_notes_and_derived_leads_are_written_out() -> None:
    raw = synthetic(6000, 2)
    two = read_ecg(encoded(ecg_with([group([channel("I"), channel("II")], raw)])))
    measured = Measurements(72.0, 833.3, 160.0, 96.0, 380.0, 416.3, 403.4, 45.0, "regular")
    root = _svg(render_svg(two, measurements=measured, layout="3x4"))
    texts = " ".join(t.text or "" for t in root.findall(".//svg:text", NS))  # lines wrap
    assert "HR 72 bpm" in texts
    assert "QTcB 416.3 ms" in texts
    assert "Rhythm regular" in texts
    assert "III*" in texts  # computed from I and II
    assert "V1 (not in the file)" in texts
    assert "Not in the file: V1, V2, V3, V4, V5 and V6." in texts
    assert "first 10 s of 12 s" in texts
    rhythm = _paths(root, data_role="rhythm")
    assert len(_points(rhythm[0].get("d", ""))) == 5000  # 10 s of 12 at 500 Hz


def test_bad_parameters_are_refused(ecg: Ecg) -> None:
    for arguments in ({"layout": "6x2"}, {"speed": 0.0}, {"gain": float("nan")}):
        with pytest.raises(SvgError) as refused:
            render_svg(ecg, **arguments)  # type: ignore[arg-type]
        assert refused.value.reason == "invalid_parameter"
