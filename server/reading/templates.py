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


# The text a new report starts from -------------------------------------------------

DEFAULT_TEXT = {
    ECG: (
        "Rhythm: {{ measurements.rhythm or '' }}\n"
        "Rate: {{ measurements.heart_rate_bpm or '' }} bpm\n"
        "Conduction: \n"
        "QRS, ST segments and T waves: \n"
        "Other findings: ",
        "",
    ),
    IMAGING: (
        "Technique: {{ study_description }}\nComparison: none available.\nFindings: ",
        "",
    ),
}
"""(findings, impression) jinja2 text of each kind before an administrator changes it."""
TEXT_CONTEXT = ("measurements", "question", "specialty", "priority", "clinic", "study_description")
"""The names a report template's text may use."""
TEXT_LIMIT = 20_000


def text_environment() -> SandboxedEnvironment:
    """The sandbox of report texts: plain text out (the page escapes it), undefined names empty."""
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


def template_problem(text: str) -> str | None:
    """Why a template's text cannot be used (syntax, sandbox, length), in plain words; or None."""
    if len(text) > TEXT_LIMIT:
        return f"A template is at most {TEXT_LIMIT} characters."
    try:
        fill(text, sample_context())
    except Exception as error:  # any failure of an administrator's template is reported
        return f"The template cannot be used: {error}"
    return None


def sample_context() -> dict[str, Any]:
    """Values to try a template with, as a real request would give them."""
    return {
        "measurements": {"rhythm": "sinus rhythm", "heart_rate_bpm": 61, "qrs_ms": 99},
        "question": "Chest pain since this morning",
        "specialty": "cardiology",
        "priority": "stat",
        "clinic": "Riverside Clinic",
        "study_description": "Resting 12-lead ECG",
    }


def fill(text: str, context: Mapping[str, Any]) -> str:
    """A template's text rendered in the sandbox with the request's values."""
    return text_environment().from_string(text).render(**context)
