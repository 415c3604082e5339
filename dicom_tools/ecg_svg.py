"""ECG paper as SVG, in millimetres: grid, calibration pulses, lead traces, labels, header.

The document is ``width="{W}mm" height="{H}mm" viewBox="0 0 {W} {H}"``: one user
unit is one millimetre of paper, so it prints to scale. The grid has thin lines
every 1 mm and thick ones every 5 mm (ECG-paper pink, two paths). Each row starts
with a calibration pulse, ``<path data-role="calibration">``: exactly 1 mV high at
the gain and 200 ms wide at the speed. Each trace is ``<path data-lead="II">``
whose points are every sample of the lead, at x = x0 + t * speed and
y = baseline - uV / 1000 * gain (mm, at most 3 decimals), from the samples rounded
to whole microvolts as the ECG API sends them; nothing is downsampled.

Layouts: ``3x4`` is four columns of 2.5 s (I, II, III | aVR, aVL, aVF | V1-V3 |
V4-V6) and a lead II rhythm strip below (``data-role="rhythm"``); ``12x1`` is each
lead on its own row. At most the first 10 s are drawn (the header says so when the
recording is longer). All text is escaped by ElementTree, and characters XML cannot
carry are dropped. Styling is presentation attributes only (no ``style``), so the
document needs no style-src in a Content-Security-Policy.
"""

from __future__ import annotations

import math
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from dicom_tools.ecg import LEAD_NAMES, Ecg, Lead, whole_microvolts
from dicom_tools.ecg_measurements import Measurements
from dicom_tools.errors import ReasonedError

Layout = Literal["3x4", "12x1"]
LAYOUTS: tuple[Layout, ...] = ("3x4", "12x1")
MAX_SHOWN_S = 10.0
COLUMN_S = 2.5
CALIBRATION_S = 0.2
MAX_ROWS_12X1 = 16

SVG_NS = "http://www.w3.org/2000/svg"
MARGIN = 5
HEADER_HEIGHT = 17
LINE_HEIGHT = 4.5
FONT_SIZE = 3.0
MINOR_COLOUR = "#f5c6c6"
MAJOR_COLOUR = "#e58f8f"
TRACE_WIDTH = 0.25

SvgReason = Literal["invalid_parameter"]


class SvgError(ReasonedError[SvgReason]):
    """The paper cannot be drawn with these parameters."""


@dataclass(frozen=True, slots=True)
class Header:
    """The text of the header, already formatted for people (the caller formats names, dates)."""

    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study: str = ""
    """The study's date and time."""


@dataclass(frozen=True, slots=True)
class _Cell:
    name: str
    start_s: float
    end_s: float
    role: str | None = None


def render_svg(
    ecg: Ecg,
    *,
    measurements: Measurements | None = None,
    header: Header | None = None,
    layout: Layout = "3x4",
    speed: float = 25.0,
    gain: float = 10.0,
) -> str:
    """The ECG on paper at speed (mm/s) and gain (mm/mV), as SVG text."""
    if layout not in LAYOUTS:
        raise SvgError("invalid_parameter", f"The layout is 3x4 or 12x1, not {layout!r}.")
    if not (math.isfinite(speed) and 5 <= speed <= 200):
        raise SvgError("invalid_parameter", f"The speed is 5 to 200 mm/s, not {speed}.")
    if not (math.isfinite(gain) and 1 <= gain <= 100):
        raise SvgError("invalid_parameter", f"The gain is 1 to 100 mm/mV, not {gain}.")
    if not ecg.leads:
        raise SvgError("invalid_parameter", "The ECG has no leads to draw.")
    paper = _Paper(ecg, layout, speed, gain)
    return paper.draw(header or Header(), measurements)


class _Paper:
    """The geometry of one drawing; every length in millimetres."""

    def __init__(self, ecg: Ecg, layout: Layout, speed: float, gain: float) -> None:
        self.ecg, self.layout, self.speed, self.gain = ecg, layout, speed, gain
        self.shown_s = min(ecg.duration_s, MAX_SHOWN_S)
        self.rows = _rows(ecg, layout, self.shown_s)
        factor = 3 if layout == "3x4" else 2
        self.row_height = 5 * math.ceil(factor * gain / 5)
        self.baseline_offset = 5 * round(self.row_height * 0.6 / 5) or 5
        self.grid_x, self.grid_y = MARGIN, HEADER_HEIGHT
        self.pulse_x = self.grid_x + 2
        self.x0 = self.grid_x + 5 * math.ceil((4 + CALIBRATION_S * speed) / 5)
        span = max(self.shown_s, COLUMN_S * 4 if layout == "3x4" else 0.0) * speed
        self.grid_width = math.ceil(self.x0 - self.grid_x + span + 2)
        self.grid_height = self.row_height * len(self.rows)
        self.width = self.grid_x + self.grid_width + MARGIN
        frequency = ecg.sampling_frequency
        count = min(len(ecg.leads[0].samples_uv), math.ceil(self.shown_s * frequency - 1e-9))
        self.count = count
        self.x_texts = _numbers(_thousandths(self.x0 + np.arange(count) / frequency * speed))

    def baseline(self, row: int) -> float:
        return self.grid_y + self.row_height * row + self.baseline_offset

    def draw(self, header: Header, measurements: Measurements | None) -> str:
        footer = self._footer(measurements)
        width = _mm(self.width)
        height = _mm(self.grid_y + self.grid_height + 3 + LINE_HEIGHT * len(footer) + MARGIN)
        root = ET.Element(
            "svg",
            {
                "xmlns": SVG_NS,
                "width": f"{width}mm",
                "height": f"{height}mm",
                "viewBox": f"0 0 {width} {height}",
                "font-family": "sans-serif",
                "font-size": _mm(FONT_SIZE),
            },
        )
        ET.SubElement(root, "title").text = _clean(f"ECG {header.patient_name}".strip())
        ET.SubElement(root, "rect", {"width": width, "height": height, "fill": "#ffffff"})
        self._grid(root)
        self._header(root, header)
        for row, cells in enumerate(self.rows):
            self._calibration(root, row)
            for cell in cells:
                self._trace(root, row, cell)
        y = self.grid_y + self.grid_height + 3 + LINE_HEIGHT * 0.7
        for line in footer:
            _text(root, self.grid_x, y, line)
            y += LINE_HEIGHT
        return ET.tostring(root, encoding="unicode")

    def _grid(self, root: ET.Element) -> None:
        left, top = self.grid_x, self.grid_y
        right, bottom = left + self.grid_width, top + self.grid_height
        minor: list[str] = []
        major: list[str] = []
        for x in range(left, right + 1):
            (major if (x - left) % 5 == 0 else minor).append(f"M{x} {top}V{bottom}")
        for y in range(top, bottom + 1):
            (major if (y - top) % 5 == 0 else minor).append(f"M{left} {y}H{right}")
        for role, lines, colour, stroke in (
            ("grid-minor", minor, MINOR_COLOUR, "0.1"),
            ("grid-major", major, MAJOR_COLOUR, "0.2"),
        ):
            ET.SubElement(
                root,
                "path",
                {
                    "data-role": role,
                    "d": "".join(lines),
                    "stroke": colour,
                    "stroke-width": stroke,
                    "fill": "none",
                },
            )

    def _header(self, root: ET.Element, header: Header) -> None:
        first = " · ".join(
            part
            for part in (
                header.patient_name,
                f"ID {header.patient_id}" if header.patient_id else "",
                f"Born {header.birth_date}" if header.birth_date else "",
                header.sex,
            )
            if part
        )
        shown = (
            f"first {self.shown_s:g} s of {self.ecg.duration_s:g} s"
            if self.ecg.duration_s > self.shown_s + 1e-9
            else f"{self.ecg.duration_s:g} s"
        )
        second = " · ".join(
            part
            for part in (
                f"Study {header.study}" if header.study else "",
                f"{_number(self.speed)} mm/s",
                f"{_number(self.gain)} mm/mV",
                f"{_number(self.ecg.sampling_frequency)} Hz",
                shown,
            )
            if part
        )
        _text(root, self.grid_x, 8.5, first, weight="bold")
        _text(root, self.grid_x, 13.0, second)

    def _calibration(self, root: ET.Element, row: int) -> None:
        base = self.baseline(row)
        left, right = self.pulse_x, self.pulse_x + CALIBRATION_S * self.speed
        top = base - self.gain
        d = f"M {_mm(left)} {_mm(base)} L {_mm(left)} {_mm(top)} {_mm(right)} {_mm(top)} " + (
            f"{_mm(right)} {_mm(base)}"
        )
        ET.SubElement(
            root,
            "path",
            {
                "data-role": "calibration",
                "d": d,
                "stroke": "#000000",
                "stroke-width": str(TRACE_WIDTH),
                "fill": "none",
            },
        )

    def _trace(self, root: ET.Element, row: int, cell: _Cell) -> None:
        lead = self.ecg.lead(cell.name)
        label_x = self.x0 + cell.start_s * self.speed + 1
        label_y = self.grid_y + self.row_height * row + FONT_SIZE + 0.5
        if lead is None:
            _text(root, label_x, label_y, f"{cell.name} (not in the file)", fill="#777777")
            return
        frequency = self.ecg.sampling_frequency
        first = math.ceil(cell.start_s * frequency - 1e-9)
        last = min(self.count, math.ceil(cell.end_s * frequency - 1e-9))
        suffix = "*" if lead.derived else ""
        _text(root, label_x, label_y, f"{lead.name}{suffix}", weight="bold")
        if last <= first:
            return
        attributes = {
            "data-lead": lead.name,
            "d": self._path(lead, row, first, last),
            "stroke": "#000000",
            "stroke-width": str(TRACE_WIDTH),
            "stroke-linejoin": "round",
            "fill": "none",
        }
        if cell.role:
            attributes["data-role"] = cell.role
        ET.SubElement(root, "path", attributes)

    def _path(self, lead: Lead, row: int, first: int, last: int) -> str:
        microvolts = whole_microvolts(lead.samples_uv[first:last])
        # y in thousandths of a millimetre is exact for whole microvolts and gains of 1/1000 mm
        y = round(self.baseline(row) * 1000) - np.rint(microvolts * self.gain).astype(np.int64)
        points = np.empty(2 * (last - first), dtype=object)
        points[0::2] = self.x_texts[first:last]
        points[1::2] = _numbers(y)
        if len(points) == 2:
            return f"M {points[0]} {points[1]}"
        return f"M {points[0]} {points[1]} L " + " ".join(points[2:].tolist())

    def _footer(self, measurements: Measurements | None) -> list[str]:
        width_chars = max(60, int(self.grid_width / (FONT_SIZE * 0.55)))
        lines = []
        automatic = measurements.as_dict() if measurements is not None else {}
        lines.append(
            "Automatic, to be confirmed by the reader: " + _measured(automatic, with_rhythm=True)
        )
        device = self.ecg.device
        stated = _measured(device.as_dict(), with_rhythm=False)
        extra = [
            f"QTc {_number(device.qtc_ms)} ms" if device.qtc_ms is not None else "",
            _axes(device.p_axis_deg, device.qrs_axis_deg, device.t_axis_deg),
        ]
        lines.append("Device: " + " · ".join([stated, *(e for e in extra if e)]))
        if device.statements:
            lines.append("Device statements: " + "; ".join(device.statements))
        derived = [lead.name for lead in self.ecg.leads if lead.derived]
        notes = list(self.ecg.notes)
        if derived:
            notes.insert(0, f"* {', '.join(derived)} computed from the stored limb leads.")
        lines.extend(notes)
        wrapped: list[str] = []
        for line in lines:
            wrapped.extend(textwrap.wrap(_clean(line), width_chars) or [""])
        return wrapped[:40]


def _rows(ecg: Ecg, layout: Layout, shown_s: float) -> list[list[_Cell]]:
    if layout == "3x4":
        columns = (
            ("I", "II", "III"),
            ("aVR", "aVL", "aVF"),
            ("V1", "V2", "V3"),
            ("V4", "V5", "V6"),
        )
        rows = [
            [
                _Cell(column[row], COLUMN_S * index, COLUMN_S * (index + 1))
                for index, column in enumerate(columns)
            ]
            for row in range(3)
        ]
        rhythm = "II" if ecg.lead("II") is not None else ecg.leads[0].name
        rows.append([_Cell(rhythm, 0.0, shown_s, role="rhythm")])
        return rows
    standard = [lead.name for lead in ecg.leads if lead.name in LEAD_NAMES]
    names = standard or [lead.name for lead in ecg.leads][:MAX_ROWS_12X1]
    return [[_Cell(name, 0.0, shown_s)] for name in names]


def _measured(values: Mapping[str, object], *, with_rhythm: bool) -> str:
    def shown(key: str, label: str, unit: str) -> str:
        value = values.get(key)
        text = _number(value) if isinstance(value, int | float) else "—"
        return f"{label} {text}{unit if text != '—' else ''}"

    parts = [
        shown("heart_rate_bpm", "HR", " bpm"),
        shown("rr_ms", "RR", " ms"),
        shown("pr_ms", "PR", " ms"),
        shown("qrs_ms", "QRS", " ms"),
        shown("qt_ms", "QT", " ms"),
        shown("qtc_bazett_ms", "QTcB", " ms"),
        shown("qtc_fridericia_ms", "QTcF", " ms"),
    ]
    if with_rhythm:
        parts.append(shown("qrs_axis_deg", "QRS axis", "°"))
        rhythm = values.get("rhythm")
        parts.append(f"Rhythm {rhythm if isinstance(rhythm, str) else '—'}")
    return " · ".join(parts)


def _axes(p: float | None, qrs: float | None, t: float | None) -> str:
    if p is None and qrs is None and t is None:
        return ""
    return "P/QRS/T axes " + "/".join("—" if v is None else _number(v) for v in (p, qrs, t)) + "°"


def _text(
    root: ET.Element,
    x: float,
    y: float,
    content: str,
    *,
    weight: str | None = None,
    fill: str = "#000000",
) -> None:
    attributes = {"x": _mm(x), "y": _mm(y), "fill": fill}
    if weight:
        attributes["font-weight"] = weight
    ET.SubElement(root, "text", attributes).text = _clean(content)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (ElementTree escapes the rest)."""
    return _NOT_XML.sub("", text)


def _thousandths(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.rint(values * 1000.0).astype(np.int64)


_FRACTIONS: npt.NDArray[np.object_] = np.array(
    [""] + [f".{fraction:03d}".rstrip("0") for fraction in range(1, 1000)], dtype=object
)
"""The decimals of 0..999 thousandths as _decimal writes them ("", ".001", ".5")."""


def _numbers(thousandths: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Thousandths of a millimetre as decimal text (at most 3 decimals), as _decimal writes them.

    Vectorised: each distinct whole part is formatted once, the decimals come from a table,
    and the parts are joined by numpy (object arrays of str add elementwise).
    """
    unique, inverse = np.unique(thousandths, return_inverse=True)
    wholes, fractions = np.divmod(np.abs(unique), 1000)
    whole_values, whole_index = np.unique(wholes, return_inverse=True)
    whole_texts = np.array([str(w) for w in whole_values.tolist()], dtype=object)
    signs = np.where(unique < 0, "-", "").astype(object)
    texts = signs + whole_texts[whole_index.reshape(-1)] + _FRACTIONS[fractions]
    result: npt.NDArray[np.object_] = texts[inverse.reshape(-1)]
    return result


def _decimal(thousandths: int) -> str:
    whole, fraction = divmod(abs(thousandths), 1000)
    text = str(whole) if fraction == 0 else f"{whole}.{fraction:03d}".rstrip("0")
    return "-" + text if thousandths < 0 else text


def _mm(value: float) -> str:
    return _decimal(round(value * 1000))


def _number(value: object) -> str:
    """A measurement as people read it: whole numbers without decimals, else one decimal."""
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
