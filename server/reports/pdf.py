"""The report's PDF: a plain-language clinical report rendered from the record with reportlab.

Every value from the record is inert text: it is escaped for reportlab's Paragraph markup, so
`<font>`, `&amp;` or PDF operators come out literally. Latin, Greek and Cyrillic text is set in
DejaVu Sans (Helvetica when it is absent), CJK runs in WenQuanYi Zen Hei when installed
(embedded), else in Adobe's CID fonts STSong-Light and HYSMyeongJo-Medium (not embedded). The
output is deterministic for one record (reportlab's invariant mode, dates from `signed_at`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_DIRECTORY = Path("/usr/share/fonts/truetype/dejavu")
EMBEDDED_CJK_FONT = ("WenQuanYiZenHei", Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"))
"""A TrueType CJK font (Debian's fonts-wqy-zenhei: Han, kana, Hangul), embedded as a subset."""
CJK_FONT = "STSong-Light"
HANGUL_FONT = "HYSMyeongJo-Medium"
"""Adobe's CID fonts (not embedded: the reader supplies glyphs), when no CJK TrueType exists."""
CJK = re.compile(
    "(?P<hangul>[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+)"
    "|(?P<han>[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    "\u3200-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0002fa1f]+)"
)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
SEX = {"F": "Female", "M": "Male", "O": "Other", "U": "Unknown"}
PRIORITY = {"stat": "STAT", "urgent": "Urgent", "routine": "Routine"}
MEASUREMENT_LABELS = {
    "heart_rate_bpm": "Heart rate",
    "rr_ms": "RR interval",
    "pr_ms": "PR interval",
    "qrs_ms": "QRS duration",
    "qt_ms": "QT interval",
    "qtc_ms": "QTc",
    "axis_deg": "QRS axis",
    "rhythm": "Rhythm",
}
UNITS = {"_bpm": "bpm", "_ms": "ms", "_deg": "°", "_mm": "mm", "_cm": "cm", "_mv": "mV"}


def render_report_pdf(record: Mapping[str, Any]) -> bytes:
    """The unsigned report PDF for a record (the same bytes every time for the same record)."""
    fonts = _fonts()
    styles = _styles(fonts)
    signed_at = _parse_time(record.get("signed_at"))
    title = _title(record)
    look = _Look(styles=styles, han=fonts["han"], hangul=fonts["hangul"])
    story = _story(record=record, title=title, look=look)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=_plain(title),
        author=_plain(_signer_name(record)),
        subject="Doorstep signed report",
        creator="Doorstep",
        producer="Doorstep (reportlab)",
        invariant=1,
    )
    decorate = _page_decoration(
        fonts=fonts, footer=f"Doorstep · {_plain(title)} · report {record.get('report_id', '')}"
    )
    fixed = signed_at or datetime(2000, 1, 1, tzinfo=UTC)

    def first_page(canvas: Canvas, doc: Any) -> None:
        canvas._doc.setDateFormatter(lambda *_: fixed.strftime("D:%Y%m%d%H%M%SZ"))
        decorate(canvas, doc)

    document.build(story, onFirstPage=first_page, onLaterPages=decorate)
    return buffer.getvalue()


def _story(
    *,
    record: Mapping[str, Any],
    title: str,
    look: _Look,
) -> list[Flowable]:
    """The report's flowables, top to bottom."""
    patient = _mapping(record.get("patient"))
    study = _mapping(record.get("study"))
    request = _mapping(record.get("request"))
    story: list[Flowable] = [look.paragraph(title, "title")]
    story.append(_heading("Patient", look))
    story.append(
        _pairs(
            [
                ("Name", _person_name(_text(patient.get("name")))),
                ("Patient ID", _text(patient.get("id"))),
                ("Birth date", _text(patient.get("birth_date"))),
                ("Sex", SEX.get(_text(patient.get("sex")), _text(patient.get("sex")))),
            ],
            look,
        )
    )
    story.append(_heading("Study", look))
    modalities = study.get("modalities")
    story.append(
        _pairs(
            [
                ("Date", _text(study.get("study_date"))),
                ("Description", _text(study.get("description"))),
                (
                    "Modalities",
                    ", ".join(_text(m) for m in modalities) if isinstance(modalities, list) else "",
                ),
                ("Accession number", _text(study.get("accession_number"))),
                ("Study UID", _text(study.get("study_uid"))),
            ],
            look,
        )
    )
    story.append(_heading("Request", look))
    story.append(
        _pairs(
            [
                ("Clinic", _text(request.get("clinic"))),
                ("Requested by", _text(request.get("requested_by"))),
                ("Specialty", _text(request.get("specialty"))),
                (
                    "Priority",
                    PRIORITY.get(_text(request.get("priority")), _text(request.get("priority"))),
                ),
                ("Requested at", _time_text(request.get("requested_at"))),
                ("Clinical question", _text(request.get("question"))),
            ],
            look,
        )
    )
    if record.get("kind") == "addendum":
        story.append(_heading("Text", look))
        story.extend(_body(_text(record.get("text")), look))
    else:
        story.append(_heading("Findings", look))
        story.extend(_body(_text(record.get("findings")), look))
        story.append(_heading("Impression", look))
        story.extend(_body(_text(record.get("impression")), look))
    measurements = _mapping(record.get("measurements"))
    if measurements:
        story.append(_heading("Measurements", look))
        story.append(
            _pairs([_measurement(key, value) for key, value in measurements.items()], look)
        )
    story.append(Spacer(1, 6 * mm))
    story.append(look.paragraph(_signature_line(record), "signer"))
    story.append(
        look.paragraph(
            "The signed record of this report is attached to this file as report.json; "
            "check the signature with `doorstep verify`.",
            "small",
        )
    )
    instances = record.get("instances")
    story.append(_heading("Annex: instances covered by this report", look))
    rows = [
        (_text(i.get("sop_instance_uid")), _text(i.get("sha256")))
        for i in (instances if isinstance(instances, list) else [])
        if isinstance(i, Mapping)
    ]
    if rows:
        story.append(_instances(rows, look))
    else:
        story.append(look.paragraph("No instances are listed.", "body"))
    return story


def _title(record: Mapping[str, Any]) -> str:
    """ "Addendum to report N", "ECG report" or "Imaging report"."""
    if record.get("kind") == "addendum":
        return f"Addendum to report {_text(record.get('amends'))}"
    modalities = _mapping(record.get("study")).get("modalities")
    if isinstance(modalities, list) and modalities and all(m == "ECG" for m in modalities):
        return "ECG report"
    return "Imaging report"


def _signature_line(record: Mapping[str, Any]) -> str:
    """ "Electronically signed by <name>, <organisation>, at <time UTC>"."""
    signer = _mapping(record.get("signer"))
    organisation = _text(signer.get("organisation"))
    who = _signer_name(record) + (f", {organisation}" if organisation else "")
    return f"Electronically signed by {who}, at {_time_text(record.get('signed_at'))}"


def _signer_name(record: Mapping[str, Any]) -> str:
    """The signer's display name, else username."""
    signer = _mapping(record.get("signer"))
    return _text(signer.get("display_name")) or _text(signer.get("username"))


def _person_name(value: str) -> str:
    """A DICOM PN ("Family^Given^Middle^Prefix^Suffix", groups split by "=") for people."""
    shown = []
    for group in value.split("="):
        family, given, middle, prefix, suffix = ([*group.split("^"), "", "", "", ""])[:5]
        first = " ".join(p for p in (prefix, given, middle) if p)
        name = ", ".join(p for p in (family, first) if p)
        if suffix:
            name = f"{name} {suffix}"
        if name:
            shown.append(name)
    if not shown:
        return ""
    return shown[0] + (f" ({' / '.join(shown[1:])})" if len(shown) > 1 else "")


def _measurement(key: str, value: object) -> tuple[str, str]:
    """A measurement's label and its value with a unit."""
    unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), "")
    label = MEASUREMENT_LABELS.get(key)
    if label is None:
        stem = key
        for suffix in UNITS:
            if key.endswith(suffix):
                stem = key[: -len(suffix)]
        label = stem.replace("_", " ").capitalize()
    if isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, int | float):
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        shown = f"{shown}{unit}" if unit == "°" else f"{shown} {unit}".strip()
    else:
        shown = _text(value)
    return label, shown


def _pairs(rows: Sequence[tuple[str, str]], look: _Look) -> Table:
    """A two-column label/value table."""
    data = [
        [look.paragraph(label, "label"), look.paragraph(value or "—", "body")]
        for label, value in rows
    ]
    table = Table(data, colWidths=[42 * mm, None], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _instances(rows: Sequence[tuple[str, str]], look: _Look) -> Table:
    """The annex table: SOP Instance UID and SHA-256 of each instance."""
    header = [look.paragraph(t, "label") for t in ("SOP Instance UID", "SHA-256")]
    data = [header] + [[look.paragraph(t, "mono") for t in row] for row in rows]
    table = Table(data, colWidths=[62 * mm, None], hAlign="LEFT", repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _heading(text: str, look: _Look) -> Paragraph:
    """A section heading."""
    return look.paragraph(text, "heading")


def _body(text: str, look: _Look) -> list[Flowable]:
    """Free text as paragraphs (blank lines separate paragraphs, newlines break lines)."""
    blocks = [b for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    if not blocks:
        return [look.paragraph("—", "body")]
    return [look.paragraph(block, "body") for block in blocks]


@dataclass(frozen=True, slots=True)
class _Look:
    """The report's paragraph styles and the fonts for CJK runs."""

    styles: Mapping[str, ParagraphStyle]
    han: str
    hangul: str

    def paragraph(self, text: str, style_name: str) -> Paragraph:
        """Inert text as a Paragraph: markup escaped, controls dropped, CJK in a CJK font."""
        style = self.styles[style_name]
        clean = CONTROL.sub("", text)
        parts: list[str] = []
        position = 0
        for match in CJK.finditer(clean):
            parts.append(_markup(clean[position : match.start()]))
            font = self.hangul if match.lastgroup == "hangul" else self.han
            parts.append(f'<font name="{font}">{_markup(match.group())}</font>')
            position = match.end()
        parts.append(_markup(clean[position:]))
        if position:
            style = ParagraphStyle(f"{style.name}-cjk", parent=style, wordWrap="CJK")
        return Paragraph("".join(parts), style)


def _markup(text: str) -> str:
    """Text escaped for Paragraph markup, its newlines as line breaks."""
    return escape(text, {'"': "&quot;"}).replace("\n", "<br/>")


def _text(value: object) -> str:
    """A record value as text ("" for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _plain(text: str) -> str:
    """Text for document metadata: controls dropped."""
    return CONTROL.sub("", text)


def _mapping(value: object) -> Mapping[str, Any]:
    """The value when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _time_text(value: object) -> str:
    """A time as "YYYY-MM-DD HH:MM:SS UTC" (the raw text when it is not ISO 8601)."""
    parsed = _parse_time(value)
    return f"{parsed:%Y-%m-%d %H:%M:%S} UTC" if parsed else _text(value)


def _fonts() -> dict[str, str]:
    """Register the fonts (once per process) and name them by role."""
    registered = set(pdfmetrics.getRegisteredFontNames())
    faces = {"regular": "DejaVuSans", "bold": "DejaVuSans-Bold", "mono": "DejaVuSansMono"}
    fallback = {"regular": "Helvetica", "bold": "Helvetica-Bold", "mono": "Courier"}
    chosen: dict[str, str] = {}
    for role, face in faces.items():
        path = FONT_DIRECTORY / f"{face}.ttf"
        if face in registered or path.is_file():
            if face not in registered:
                pdfmetrics.registerFont(TTFont(face, str(path)))
            chosen[role] = face
        else:
            chosen[role] = fallback[role]
    name, path = EMBEDDED_CJK_FONT
    if name in registered or path.is_file():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
        chosen["han"] = chosen["hangul"] = name
        return chosen
    for cid_font in (CJK_FONT, HANGUL_FONT):
        if cid_font not in registered:
            pdfmetrics.registerFont(UnicodeCIDFont(cid_font))
    chosen["han"], chosen["hangul"] = CJK_FONT, HANGUL_FONT
    return chosen


def _styles(fonts: Mapping[str, str]) -> dict[str, ParagraphStyle]:
    """The paragraph styles of the report."""
    body = ParagraphStyle("body", fontName=fonts["regular"], fontSize=10, leading=13)
    return {
        "title": ParagraphStyle(
            "title", parent=body, fontName=fonts["bold"], fontSize=17, leading=21, spaceAfter=4
        ),
        "heading": ParagraphStyle(
            "heading",
            parent=body,
            fontName=fonts["bold"],
            fontSize=11,
            leading=14,
            spaceBefore=8,
            spaceAfter=2,
            textColor=colors.HexColor("#1f3b57"),
        ),
        "label": ParagraphStyle("label", parent=body, fontName=fonts["bold"], fontSize=9),
        "body": body,
        "signer": ParagraphStyle("signer", parent=body, fontName=fonts["bold"]),
        "small": ParagraphStyle(
            "small", parent=body, fontSize=8, leading=10, textColor=colors.grey
        ),
        "mono": ParagraphStyle("mono", parent=body, fontName=fonts["mono"], fontSize=7, leading=9),
    }


def _page_decoration(*, fonts: Mapping[str, str], footer: str) -> Callable[[Canvas, Any], None]:
    """Draw the footer (report and page number) on a page."""

    def decorate(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(fonts["regular"], 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(18 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {doc.page}")
        canvas.restoreState()

    return decorate
