"""The report PDF: plain-language content, inert user text, CJK names, deterministic bytes."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.reports.pdf import EMBEDDED_CJK_FONT, render_report_pdf
from tests.support import require_tool

HOSTILE = [
    "<script>alert(1)</script>",
    '<font name="Courier" size="40">BIG</font>',
    "<b>not bold</b> <br/> <para>",
    ") Tj ET BT /F1 99 Tf (owned",
    "&amp; &lt; &#65; & < >",
    "endstream endobj %%EOF",
]


CHINESE_FINDINGS = "窦性心律\uff0c心率61次/分\u3002Sinus rhythm."
"""Chinese text with full-width punctuation (written as escapes for the linter)."""


def sample_record(**changes: Any) -> dict[str, Any]:
    """A complete report record (an ECG report), with top-level changes applied."""
    record: dict[str, Any] = {
        "format": "doorstep-report/1",
        "report_id": 12,
        "kind": "report",
        "amends": None,
        "request": {
            "id": 7,
            "specialty": "cardiology",
            "priority": "stat",
            "question": "Chest pain, rule out STEMI",
            "requested_at": "2026-12-01T10:00:00Z",
            "requested_by": "gp.river",
            "clinic": "River Clinic",
        },
        "patient": {"id": "A-1", "name": "Able^Alice", "birth_date": "1970-01-01", "sex": "F"},
        "study": {
            "study_uid": "1.2.826.0.1.3680043.10.1.1",
            "accession_number": "ACC-9",
            "study_date": "2026-11-30",
            "description": "Resting ECG",
            "modalities": ["ECG"],
        },
        "signer": {
            "username": "dr.heart",
            "display_name": "Dr Hart",
            "organisation": "City Hospital",
            "specialties": ["cardiology"],
        },
        "signed_at": "2026-12-01T10:12:03Z",
        "findings": "Sinus rhythm at 61 bpm. Normal axis.",
        "impression": "Normal ECG.",
        "text": "",
        "measurements": {
            "heart_rate_bpm": 61.1,
            "pr_ms": 152,
            "qrs_ms": 99,
            "qt_ms": 399,
            "qtc_ms": 402.5,
            "axis_deg": 49.1,
            "rhythm": "sinus rhythm",
        },
        "instances": [
            {"sop_instance_uid": "1.2.826.0.1.3680043.10.1.1.1", "sha256": "a" * 64},
            {"sop_instance_uid": "1.2.826.0.1.3680043.10.1.1.2", "sha256": "b" * 64},
        ],
    }
    record.update(copy.deepcopy(changes))
    return record


def text_of(pdf: bytes, tmp_path: Path) -> str:
    """pdftotext's reading of a PDF (raw order, so long lines stay whole)."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [require_tool("pdftotext"), "-raw", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _fonts_of(pdf: bytes, tmp_path: Path) -> str:
    """pdffonts' list of the fonts a PDF uses."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [require_tool("pdffonts"), str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout


def _assert_cjk_font(fonts: str, *, cid_font: str) -> None:
    """CJK text is in the embedded WenQuanYi subset when installed, else in Adobe's CID font."""
    name, path = EMBEDDED_CJK_FONT
    if path.is_file():
        (line,) = [row for row in fonts.splitlines() if f"+{name}" in row]
        assert line.split()[-5:-2] == ["yes", "yes", "yes"]  # embedded, subset, ToUnicode
    else:
        assert cid_font in fonts


def test_report_reads_in_plain_language(tmp_path: Path) -> None:
    text = text_of(render_report_pdf(sample_record()), tmp_path)
    for expected in [
        "ECG report",
        "Able, Alice",
        "1970-01-01",
        "Female",
        "2026-11-30",
        "Resting ECG",
        "1.2.826.0.1.3680043.10.1.1",
        "River Clinic",
        "gp.river",
        "STAT",
        "Chest pain, rule out STEMI",
        "2026-12-01 10:00:00 UTC",
        "Findings",
        "Sinus rhythm at 61 bpm. Normal axis.",
        "Impression",
        "Normal ECG.",
        "Heart rate 61.1 bpm",
        "QTc 402.5 ms",
        "QRS axis 49.1°",
        "Rhythm sinus rhythm",
        "Electronically signed by Dr Hart, City Hospital, at 2026-12-01 10:12:03 UTC",
        f"1.2.826.0.1.3680043.10.1.1.1 {'a' * 64}",
        f"1.2.826.0.1.3680043.10.1.1.2 {'b' * 64}",
    ]:
        assert expected in text, expected


def test_title_follows_the_kind_and_modalities(tmp_path: Path) -> None:
    imaging = sample_record(
        study={"study_uid": "1.2.3", "modalities": ["CT"], "description": "CT head"},
        measurements={},
    )
    text = text_of(render_report_pdf(imaging), tmp_path)
    assert "\nImaging report\n" in text
    assert "ECG report" not in text
    assert "Measurements" not in text
    addendum = sample_record(
        kind="addendum", amends=12, text="Correction: the QT is 410 ms.", findings="", impression=""
    )
    text = text_of(render_report_pdf(addendum), tmp_path)
    assert "\nAddendum to report 12\n" in text
    assert "Correction: the QT is 410 ms." in text
    assert "Findings" not in text
    assert "Impression" not in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_text_is_inert(tmp_path: Path, hostile: str) -> None:
    record = sample_record(
        findings=f"before {hostile} after",
        impression=hostile,
        patient={"id": hostile, "name": f"{hostile}^Eve", "birth_date": "", "sex": ""},
        request={"question": hostile, "clinic": hostile},
        measurements={"note": hostile},
    )
    pdf = render_report_pdf(record)
    text = text_of(pdf, tmp_path)
    assert f"before {hostile} after" in text
    assert text.count(hostile) >= 5
    fonts = _fonts_of(pdf, tmp_path)
    assert "Courier" not in fonts
    assert "DejaVuSans" in fonts


def test_cjk_names_are_shown(tmp_path: Path) -> None:
    record = sample_record(
        patient={"id": "B-2", "name": "Wang^XiaoMing=王^小明", "birth_date": "", "sex": "M"},
        findings=CHINESE_FINDINGS,
    )
    pdf = render_report_pdf(record)
    text = text_of(pdf, tmp_path)
    assert "Wang, XiaoMing (王, 小明)" in text
    assert CHINESE_FINDINGS in text
    _assert_cjk_font(_fonts_of(pdf, tmp_path), cid_font="STSong-Light")
    only = text_of(render_report_pdf(sample_record(patient={"name": "王^小明"})), tmp_path)
    assert "王, 小明" in only
    korean = render_report_pdf(sample_record(patient={"name": "김^민준"}))
    assert "김, 민준" in text_of(korean, tmp_path)
    _assert_cjk_font(_fonts_of(korean, tmp_path), cid_font="HYSMyeongJo-Medium")


def test_control_characters_and_odd_values_do_not_break_it(tmp_path: Path) -> None:
    record = sample_record(
        findings="line one\nline two\x00\x07\x1b[31m",
        impression=None,
        patient={"name": "", "birth_date": "", "sex": "", "id": ""},
        study={"modalities": "not a list"},
        request=None,
        measurements={"flag": True, "count": 3, "ratio": 0.5},
        instances="none",
    )
    text = text_of(render_report_pdf(record), tmp_path)
    assert "line one\nline two[31m" in text
    assert "Flag yes" in text
    assert "Count 3" in text
    assert "Ratio 0.5" in text
    assert "No instances are listed." in text


def test_same_record_same_bytes_dated_at_signing() -> None:
    first = render_report_pdf(sample_record())
    assert render_report_pdf(sample_record()) == first
    assert b"/CreationDate (D:20261201101203Z)" in first
    assert render_report_pdf(sample_record(findings="Other text.")) != first
