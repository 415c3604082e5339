"""Report templates per modality: the editor's fields, rendered by a sandboxed jinja2.

The templates under web/templates/reading/report_templates/ may be adapted by an operator,
so they run in jinja2's SandboxedEnvironment (no attribute access to internals) with HTML
autoescaping; every value (a draft's findings may hold anything) is escaped on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from server.package_data import web_dir

ECG = "ecg"
IMAGING = "imaging"
ECG_MEASUREMENTS = (
    ("rhythm", "Rhythm", ""),
    ("heart_rate_bpm", "Rate", "bpm"),
    ("pr_ms", "PR", "ms"),
    ("qrs_ms", "QRS", "ms"),
    ("qt_ms", "QT", "ms"),
    ("qtc_ms", "QTc", "ms"),
    ("axis_deg", "Axis", "°"),
)
"""(draft measurement key, label, unit) of the ECG template, in the order it shows them."""
IMAGING_FIELDS = (("technique", "Technique"), ("comparison", "Comparison"))


def kind_of(*, modalities: Sequence[str], specialty: str) -> str:
    """The template for a study: ECG for an ECG study or a cardiology reading, else imaging."""
    return ECG if "ECG" in modalities or (specialty == "cardiology" and not modalities) else IMAGING


def environment() -> SandboxedEnvironment:
    """The sandbox that renders report templates (autoescaped, from report_templates/)."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(web_dir() / "templates" / "reading" / "report_templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(round(value)) if value == round(value) or abs(value) >= 10 else f"{value:.1f}"
    return str(value)


def render_fields(
    *,
    kind: str,
    findings: str,
    impression: str,
    measurements: Mapping[str, Any],
) -> Markup:
    """The editor's fields for one kind of report, filled from the draft (escaped HTML)."""
    values = {key: _shown(value) for key, value in measurements.items()}
    html = (
        environment()
        .get_template(f"{kind}.html")
        .render(
            findings=findings,
            impression=impression,
            values=values,
            ecg_measurements=ECG_MEASUREMENTS,
            imaging_fields=IMAGING_FIELDS,
        )
    )
    return Markup(html)  # noqa: S704 - rendered by the autoescaping sandbox above
