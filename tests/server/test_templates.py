"""The display filters of the template environment, and that the templates use them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from types import SimpleNamespace

import pytest
from jinja2 import Environment
from markupsafe import Markup

from server.package_data import web_dir
from server.templates import (
    StaticFiles,
    create_environment,
    dicom_date,
    dicom_time,
    person_name,
    sex,
)

FULL_WIDTH = "\uff12\uff10\uff12\uff14\uff10\uff11\uff13\uff11"  # 20240131
# What each kind of value is shown through; (template, expression) pairs that are not yet.
FILTERS = {
    "birth_date": "dicom_date",
    "study_date": "dicom_date",
    "(patient_)?sex": "sex",
    "patient_name": "person_name",
}


@pytest.fixture(scope="module")
def environment() -> Environment:
    return create_environment(StaticFiles("/static", web_dir() / "static"))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("19560314", "14 Mar 1956"),
        ("1956-03-14", "14 Mar 1956"),
        ("1956.03.14", "14 Mar 1956"),  # ACR-NEMA 2.0 form, still found in old files
        (" 20240131 ", "31 Jan 2024"),  # DICOM pads values to an even length
        (date(1970, 1, 1), "1 Jan 1970"),
        (datetime(2026, 12, 1, 23, 59, tzinfo=UTC), "1 Dec 2026"),
        (date(1, 1, 1), "1 Jan 0001"),
        ("20240231", "20240231"),  # no such day: shown as it is
        ("2024", "2024"),
        ("202401", "202401"),
        ("20240101-20240131", "20240101-20240131"),  # a range, not a date
        ("1956-0314", "1956-0314"),
        ("00000000", "00000000"),
        (FULL_WIDTH, FULL_WIDTH),  # full-width digits are not DA
        ("yesterday", "yesterday"),
        ("", "—"),
        ("  ", "—"),
        (None, "—"),
    ],
)
def test_dicom_date(value: object, shown: str) -> None:
    assert dicom_date(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0905", "09:05"),
        ("090501", "09:05"),
        ("090501.123456", "09:05"),
        ("09:05:01", "09:05"),  # ACR-NEMA form
        ("235960", "23:59"),  # leap second
        (time(9, 5), "09:05"),
        (datetime(2026, 1, 2, 3, 4, 5), "03:04"),
        ("14", "14"),  # the hour alone: shown as it is
        ("2500", "2500"),
        ("0960", "0960"),
        ("090561", "090561"),
        ("noon", "noon"),
        ("", "—"),
        (None, "—"),
    ],
)
def test_dicom_time(value: object, shown: str) -> None:
    assert dicom_time(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Doe^Jane", "DOE, Jane"),
        ("Doe^Jane^Quinn", "DOE, Jane Quinn"),
        ("Doe^Jane^^Dr^Jr", "DOE, Jane Jr (Dr)"),
        ("Doe", "DOE"),
        ("^Jane", "Jane"),
        ("Doe^", "DOE"),
        ("  Doe ^ Jane  ", "DOE, Jane"),
        ("van der Berg^Anna", "VAN DER BERG, Anna"),
        ("Müller^Jürgen", "MÜLLER, Jürgen"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "YAMADA, Tarou"),  # the alphabetic group first
        ("=山田^太郎=やまだ^たろう", "山田, 太郎"),  # else the first group that has a name
        ("==やまだ^たろう", "やまだ, たろう"),
        ("^^^^=^", "—"),
        ("=", "—"),
        ("a^b^c^d^e^f^g", "A, b c e (d)"),  # components past the fifth are not PN
        ("", "—"),
        (None, "—"),
    ],
)
def test_person_name(value: object, shown: str) -> None:
    assert person_name(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("F", "Female"),
        ("M", "Male"),
        ("O", "Other"),
        ("U", "Unknown"),
        (" F ", "Female"),
        ("X", "X"),
        ("Female", "Female"),  # already a label
        ("f", "f"),
        ("", "—"),
        (None, "—"),
    ],
)
def test_sex(value: object, shown: str) -> None:
    assert sex(value) == shown


@pytest.mark.parametrize("name", ["dicom_date", "dicom_time", "person_name", "sex"])
def test_filter_output_is_escaped(environment: Environment, name: str) -> None:
    hostile = '<img src=x onerror="alert(1)">^<b>&'
    for value in (hostile, Markup(hostile), f"{hostile}={hostile}"):
        html = environment.from_string(f"<p>{{{{ value|{name} }}}}</p>").render(value=value)
        inner = html.removeprefix("<p>").removesuffix("</p>")
        assert "<" not in inner, (name, html)
        assert '"' not in inner, (name, html)
        assert "&lt;" in inner, (name, html)


def test_macros(environment: Environment) -> None:
    template = environment.from_string(
        '{% import "_macros.html" as ui %}{{ ui.when(at) }}|{{ ui.when(none) }}|'
        "{{ ui.patient_name(p) }}|{{ ui.patient_name(q) }}"
    )
    html = template.render(
        at=datetime(2026, 3, 14, 9, 5, tzinfo=UTC),
        p=SimpleNamespace(family="Okafor", given="Grace"),
        q=SimpleNamespace(family="<Solo>", given=""),
    )
    assert html == (
        '<time datetime="2026-03-14T09:05:00+00:00">14 Mar 2026 09:05 UTC</time>|—|'
        "OKAFOR, Grace|&lt;SOLO&gt;"
    )


def test_templates_show_dates_names_and_sex_through_the_filters() -> None:
    seen = set()
    for template in (web_dir() / "templates").rglob("*.html"):
        text = template.read_text()
        name = template.relative_to(web_dir()).as_posix()
        assert "strftime" not in text, name
        for found in re.finditer(r"\.isoformat\(\)", text):
            assert text[: found.start()].endswith('datetime="{{ value'), name  # <time> only
        for expression in re.findall(r"\{\{(.*?)\}\}", text):
            value, *filters = (part.strip() for part in expression.split("|"))
            for field, wanted in FILTERS.items():
                if not re.search(rf"\.{field}\b(?!\()", value):
                    continue
                seen.add(field)
                assert any(f.startswith(wanted) for f in filters), f"{name}: {expression}"
        assert ".display_name" not in re.sub(
            r"(principal|user|device|signer)\.display_name", "", text
        )
    assert seen == set(FILTERS)
