"""The kiosk's vitals checks and triage rules: every threshold from both sides, the order of
flags, every plausibility limit, and their agreement with docs/kiosk-triage.md and triage.po."""

from __future__ import annotations

import dataclasses
import io
import math
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from server.errors import InvalidInput
from server.kiosk import triage
from server.kiosk.triage import Implausible, Vitals, check, flags, specialty_for

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "kiosk-triage.md"
PO = ROOT / "web" / "locale" / "zh_Hans" / "LC_MESSAGES" / "triage.po"
SOURCE = ROOT / "server" / "kiosk" / "triage.py"

CONTRACT_FIELDS = [
    "systolic",
    "diastolic",
    "heart_rate",
    "spo2",
    "glucose_mmol_l",
    "glucose_fasting",
    "temperature_c",
    "weight_kg",
]


def raised(**measured: Any) -> list[tuple[str, str, str]]:
    """(rule, code, severity) of every flag raised for these measurements, in order."""
    return [(f.rule, f.code, f.severity) for f in flags(Vitals(**measured))]


# --- the rules, threshold by threshold ----------------------------------------------------

CRISIS = ("BP-1", "hypertensive_crisis", "urgent")
HIGH_BP = ("BP-2", "high_blood_pressure", "warning")
LOW_BP = ("BP-3", "low_blood_pressure", "warning")
VERY_SLOW = ("HR-1", "very_slow_heart_rate", "urgent")
SLOW = ("HR-2", "slow_heart_rate", "warning")
FAST = ("HR-3", "fast_heart_rate", "warning")
VERY_FAST = ("HR-4", "very_fast_heart_rate", "urgent")
VERY_LOW_O2 = ("SPO2-1", "very_low_oxygen", "urgent")
LOW_O2 = ("SPO2-2", "low_oxygen", "warning")
LOW_SUGAR = ("GLU-1", "low_blood_sugar", "urgent")
VERY_HIGH_SUGAR = ("GLU-2", "very_high_blood_sugar", "urgent")
HIGH_SUGAR_FASTING = ("GLU-3", "high_blood_sugar", "warning")
HIGH_SUGAR_RANDOM = ("GLU-4", "high_blood_sugar", "warning")
HIGH_FEVER = ("TEMP-1", "high_fever", "urgent")
FEVER = ("TEMP-2", "fever", "warning")

THRESHOLDS: list[tuple[dict[str, Any], list[tuple[str, str, str]]]] = [
    # blood pressure: < 90 low, ≥ 140 / ≥ 90 high, ≥ 180 / ≥ 120 crisis
    ({"systolic": 50}, [LOW_BP]),
    ({"systolic": 89}, [LOW_BP]),
    ({"systolic": 90}, []),
    ({"systolic": 139}, []),
    ({"systolic": 140}, [HIGH_BP]),
    ({"systolic": 179}, [HIGH_BP]),
    ({"systolic": 180}, [CRISIS]),
    ({"systolic": 300}, [CRISIS]),
    ({"diastolic": 89}, []),
    ({"diastolic": 90}, [HIGH_BP]),
    ({"diastolic": 119}, [HIGH_BP]),
    ({"diastolic": 120}, [CRISIS]),
    ({"systolic": 139, "diastolic": 89}, []),
    ({"systolic": 139, "diastolic": 90}, [HIGH_BP]),
    ({"systolic": 140, "diastolic": 60}, [HIGH_BP]),
    ({"systolic": 179, "diastolic": 119}, [HIGH_BP]),
    ({"systolic": 179, "diastolic": 120}, [CRISIS]),
    ({"systolic": 180, "diastolic": 70}, [CRISIS]),
    ({"systolic": 89, "diastolic": 60}, [LOW_BP]),
    # heart rate: < 40, 40 to 49, 50 to 100 nothing, 101 to 130, > 130
    ({"heart_rate": 20}, [VERY_SLOW]),
    ({"heart_rate": 39}, [VERY_SLOW]),
    ({"heart_rate": 40}, [SLOW]),
    ({"heart_rate": 49}, [SLOW]),
    ({"heart_rate": 50}, []),
    ({"heart_rate": 100}, []),
    ({"heart_rate": 101}, [FAST]),
    ({"heart_rate": 130}, [FAST]),
    ({"heart_rate": 131}, [VERY_FAST]),
    ({"heart_rate": 250}, [VERY_FAST]),
    # SpO2: < 90 urgent, 90 to 93 warning
    ({"spo2": 50}, [VERY_LOW_O2]),
    ({"spo2": 89}, [VERY_LOW_O2]),
    ({"spo2": 90}, [LOW_O2]),
    ({"spo2": 93}, [LOW_O2]),
    ({"spo2": 94}, []),
    ({"spo2": 100}, []),
    # glucose, random (not said to be fasting): < 3.9, ≥ 11.1, ≥ 16.7
    ({"glucose_mmol_l": 3.8}, [LOW_SUGAR]),
    ({"glucose_mmol_l": 3.9}, []),
    ({"glucose_mmol_l": 11.0}, []),
    ({"glucose_mmol_l": 11.1}, [HIGH_SUGAR_RANDOM]),
    ({"glucose_mmol_l": 16.6}, [HIGH_SUGAR_RANDOM]),
    ({"glucose_mmol_l": 16.7}, [VERY_HIGH_SUGAR]),
    ({"glucose_mmol_l": 7.0, "glucose_fasting": False}, []),
    ({"glucose_mmol_l": 11.1, "glucose_fasting": False}, [HIGH_SUGAR_RANDOM]),
    # glucose, fasting: < 3.9, ≥ 7.0, ≥ 16.7
    ({"glucose_mmol_l": 3.8, "glucose_fasting": True}, [LOW_SUGAR]),
    ({"glucose_mmol_l": 3.9, "glucose_fasting": True}, []),
    ({"glucose_mmol_l": 6.9, "glucose_fasting": True}, []),
    ({"glucose_mmol_l": 7.0, "glucose_fasting": True}, [HIGH_SUGAR_FASTING]),
    ({"glucose_mmol_l": 11.1, "glucose_fasting": True}, [HIGH_SUGAR_FASTING]),
    ({"glucose_mmol_l": 16.6, "glucose_fasting": True}, [HIGH_SUGAR_FASTING]),
    ({"glucose_mmol_l": 16.7, "glucose_fasting": True}, [VERY_HIGH_SUGAR]),
    ({"glucose_fasting": True}, []),
    # temperature: 37.5 ≤ t < 39.0 fever, ≥ 39.0 high fever
    ({"temperature_c": 37.4}, []),
    ({"temperature_c": 37.5}, [FEVER]),
    ({"temperature_c": 38.9}, [FEVER]),
    ({"temperature_c": 38.99}, [FEVER]),
    ({"temperature_c": 39.0}, [HIGH_FEVER]),
    ({"temperature_c": 44.0}, [HIGH_FEVER]),
    ({"temperature_c": 34.0}, []),
    # weight raises no flag
    ({"weight_kg": 20}, []),
    ({"weight_kg": 400}, []),
]


@pytest.mark.parametrize(("measured", "expected"), THRESHOLDS)
def test_each_rule_at_and_across_its_thresholds(
    measured: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    check(Vitals(**measured))  # every case is a plausible measurement
    assert raised(**measured) == expected


def test_every_rule_is_exercised_by_the_threshold_cases() -> None:
    exercised = {rule for _, found in THRESHOLDS for rule, _, _ in found}
    assert exercised == {rule.id for rule in triage.RULES}


def test_nothing_out_of_range_raises_no_flag_not_even_an_info() -> None:
    normal = Vitals(
        systolic=120,
        diastolic=80,
        heart_rate=70,
        spo2=98,
        glucose_mmol_l=5.5,
        glucose_fasting=True,
        temperature_c=36.8,
        weight_kg=70.5,
    )
    assert flags(normal) == []
    assert flags(Vitals()) == []


def test_the_crisis_flag_says_see_a_doctor_now_for_cardiology() -> None:
    [flag] = flags(Vitals(systolic=182, diastolic=110))
    assert flag == triage.Flag(
        code="hypertensive_crisis",
        severity="urgent",
        message="Your blood pressure is very high. See a doctor now.",
        specialty="cardiology",
        rule="BP-1",
    )


def test_blood_pressure_and_heart_rate_flags_are_cardiology_and_the_others_are_not() -> None:
    for rule in triage.RULES:
        cardiac = rule.id.startswith(("BP-", "HR-"))
        assert rule.specialty == ("cardiology" if cardiac else None), rule.id


def test_every_message_says_what_to_do() -> None:
    for rule in triage.RULES:
        assert "doctor" in rule.message, rule.id
        if rule.severity == "urgent":
            assert "now" in rule.message, rule.id


# --- combinations: most severe first, then in rule order ----------------------------------


def test_flags_are_ordered_most_severe_first_then_in_rule_order() -> None:
    found = raised(
        systolic=150,
        diastolic=95,
        heart_rate=135,
        spo2=92,
        glucose_mmol_l=3.0,
        temperature_c=38.0,
    )
    assert found == [VERY_FAST, LOW_SUGAR, HIGH_BP, LOW_O2, FEVER]


def test_all_urgent_flags_come_in_rule_order() -> None:
    found = raised(
        systolic=200,
        diastolic=125,
        heart_rate=30,
        spo2=85,
        glucose_mmol_l=20.0,
        temperature_c=39.5,
    )
    assert found == [CRISIS, VERY_SLOW, VERY_LOW_O2, VERY_HIGH_SUGAR, HIGH_FEVER]


def test_a_later_urgent_flag_comes_before_an_earlier_warning() -> None:
    assert raised(systolic=145, temperature_c=39.2) == [HIGH_FEVER, HIGH_BP]
    assert raised(heart_rate=45, spo2=80) == [VERY_LOW_O2, SLOW]


def test_a_crisis_replaces_the_high_blood_pressure_flag() -> None:
    assert raised(systolic=150, diastolic=125) == [CRISIS]
    assert raised(systolic=185, diastolic=95) == [CRISIS]


def test_the_order_is_deterministic() -> None:
    v = Vitals(systolic=85, diastolic=50, heart_rate=120, spo2=91, temperature_c=37.8)
    assert flags(v) == flags(v)
    assert [f.rule for f in flags(v)] == ["BP-3", "HR-3", "SPO2-2", "TEMP-2"]


# --- the specialty of the queue -----------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "specialty"),
    [
        ({}, "general"),
        ({"systolic": 120, "spo2": 85, "temperature_c": 39.5}, "general"),
        ({"glucose_mmol_l": 2.5}, "general"),
        ({"systolic": 185}, "cardiology"),
        ({"systolic": 85}, "cardiology"),
        ({"diastolic": 95, "spo2": 85}, "cardiology"),
        ({"heart_rate": 45}, "cardiology"),
        ({"heart_rate": 140, "temperature_c": 39.5}, "cardiology"),
    ],
)
def test_specialty_is_cardiology_for_any_heart_or_pressure_flag(
    measured: dict[str, Any], specialty: str
) -> None:
    assert specialty_for(flags(Vitals(**measured))) == specialty


# --- plausibility -------------------------------------------------------------------------


def test_vitals_have_exactly_the_contract_fields_all_optional() -> None:
    fields = dataclasses.fields(Vitals)
    assert [f.name for f in fields] == CONTRACT_FIELDS
    assert all(f.default is None for f in fields)


# field: (lowest accepted, highest accepted, just below, just above)
LIMITS: dict[str, tuple[float, float, float, float]] = {
    "systolic": (50, 300, 49, 301),
    "diastolic": (20, 200, 19, 201),
    "heart_rate": (20, 250, 19, 251),
    "spo2": (50, 100, 49, 101),
    "glucose_mmol_l": (1.0, 40.0, 0.9, 40.1),
    "temperature_c": (30.0, 44.0, 29.9, 44.1),
    "weight_kg": (20, 400, 19.9, 400.1),
}


# field: (what the message calls it, its unit as written after the number)
NAMES = {
    "systolic": ("Systolic blood pressure", " mmHg"),
    "diastolic": ("Diastolic blood pressure", " mmHg"),
    "heart_rate": ("Heart rate", " beats per minute"),
    "spo2": ("Blood oxygen", "%"),
    "glucose_mmol_l": ("Blood sugar", " mmol/L"),
    "temperature_c": ("Temperature", " °C"),
    "weight_kg": ("Weight", " kg"),
}


def test_the_limits_cover_every_measured_field_in_contract_order() -> None:
    measured = [f for f in CONTRACT_FIELDS if f != "glucose_fasting"]
    assert list(triage.LIMITS) == measured
    assert list(LIMITS) == measured
    assert list(NAMES) == measured


@pytest.mark.parametrize("field", LIMITS)
def test_both_ends_of_each_limit_are_accepted(field: str) -> None:
    low, high, _, _ = LIMITS[field]
    for value in (low, high):
        check(Vitals(**{field: value}))


@pytest.mark.parametrize(("field", "side"), [(f, s) for f in LIMITS for s in (2, 3)])
def test_beyond_each_limit_is_refused_naming_the_field(field: str, side: int) -> None:
    low, high, *_ = LIMITS[field]
    value = LIMITS[field][side]
    with pytest.raises(Implausible) as caught:
        check(Vitals(**{field: value}))
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.status == 422
    assert error.field == field
    assert error.details == {"field": field}
    name, unit = NAMES[field]
    assert error.message == (
        f"{name} {value:g}{unit} is outside the possible range {low:g}–{high:g}{unit}. "  # noqa: RUF001
        "Please measure again."
    )


def test_the_message_names_field_value_and_range_in_plain_words() -> None:
    with pytest.raises(Implausible) as caught:
        check(Vitals(systolic=400))
    assert caught.value.message == (
        "Systolic blood pressure 400 mmHg is outside the possible range 50–300 mmHg. "  # noqa: RUF001
        "Please measure again."
    )
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize("field", ["glucose_mmol_l", "temperature_c", "weight_kg"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_number_that_is_not_finite_is_refused(field: str, value: float) -> None:
    with pytest.raises(Implausible) as caught:
        check(Vitals(**{field: value}))
    assert caught.value.field == field


@pytest.mark.parametrize("diastolic", [120, 121, 150])
def test_a_diastolic_not_below_the_systolic_is_refused_on_diastolic(diastolic: int) -> None:
    with pytest.raises(Implausible) as caught:
        check(Vitals(systolic=120, diastolic=diastolic))
    assert caught.value.field == "diastolic"
    assert caught.value.details == {"field": "diastolic"}
    assert caught.value.message == (
        f"Diastolic blood pressure {diastolic} mmHg must be lower than systolic blood "
        "pressure 120 mmHg. Please measure again."
    )


def test_a_diastolic_just_below_the_systolic_is_accepted() -> None:
    check(Vitals(systolic=120, diastolic=119))


@pytest.mark.parametrize(
    ("measured", "field"),
    [
        ({"systolic": 400, "diastolic": 250, "heart_rate": 300}, "systolic"),
        ({"systolic": 40, "diastolic": 30}, "systolic"),
        ({"systolic": 120, "diastolic": 250}, "diastolic"),
        ({"systolic": 120, "diastolic": 130, "heart_rate": 300}, "diastolic"),
        ({"heart_rate": 300, "spo2": 40, "weight_kg": 5}, "heart_rate"),
        ({"spo2": 101, "glucose_mmol_l": 110.0}, "spo2"),
        ({"glucose_mmol_l": 110.0, "temperature_c": 98.6}, "glucose_mmol_l"),
        ({"temperature_c": 98.6, "weight_kg": 7}, "temperature_c"),
        ({"systolic": 120, "diastolic": 80, "weight_kg": 7}, "weight_kg"),
    ],
)
def test_the_first_implausible_field_in_contract_order_is_reported(
    measured: dict[str, Any], field: str
) -> None:
    with pytest.raises(Implausible) as caught:
        check(Vitals(**measured))
    assert caught.value.field == field


# --- the documentation agrees with the code -----------------------------------------------


def doc_table(heading: str) -> list[list[str]]:
    """The body rows of the first table under `## heading` in the clinicians' doc."""
    section = DOC.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_the_doc_names_the_rules_version() -> None:
    assert re.fullmatch(r"\d+", triage.RULES_VERSION)
    found = re.findall(r"^Rules version: \*\*(.+?)\*\*$", DOC.read_text("utf-8"), re.MULTILINE)
    assert found == [triage.RULES_VERSION]


def test_the_doc_table_is_the_code_rule_by_rule() -> None:
    documented = [
        (rule, code, severity, None if specialty == "—" else specialty, message)
        for rule, code, _condition, severity, specialty, message, _source in doc_table("Rules")
    ]
    in_code = [(r.id, r.code, r.severity, r.specialty, r.message) for r in triage.RULES]
    assert documented == in_code


def test_every_documented_rule_cites_a_source_and_a_condition() -> None:
    for row in doc_table("Rules"):
        assert row[2], row[0]
        assert row[6], row[0]


def test_the_doc_limits_are_the_code_limits() -> None:
    rows = doc_table("Plausibility limits")
    documented = {}
    for field, accepted, _why in rows:
        bounds = re.match(r"([\d.]+)–([\d.]+)", accepted)  # noqa: RUF001
        assert bounds, field
        documented[field.strip("`")] = (float(bounds[1]), float(bounds[2]))
    assert documented == {f: (limit.low, limit.high) for f, limit in triage.LIMITS.items()}


# --- the Chinese catalogue ----------------------------------------------------------------


def catalogue() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="zh_Hans")


def msgids_in_source() -> set[str]:
    """What `pybabel extract -k N_` finds in triage.py."""
    found = extract_from_file("python", str(SOURCE), keywords={"N_": None})
    return {message for _line, message, _comments, _context in found if isinstance(message, str)}


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def formats(text: str, names: list[str]) -> str:
    """`text` %-formatted as gettext's callers do (also jinja2's newstyle gettext, always)."""
    return text % dict.fromkeys(names, "1")


def test_the_source_marks_every_message_and_the_module_constants_are_among_them() -> None:
    ids = msgids_in_source()
    assert {rule.message for rule in triage.RULES} <= ids
    assert {limit.message for limit in triage.LIMITS.values()} <= ids
    assert triage.NOT_BELOW_SYSTOLIC in ids


def test_the_po_file_translates_every_message_of_triage_py_and_nothing_else() -> None:
    cat = catalogue()
    assert cat.locale_identifier == "zh_Hans"
    assert cat.charset == "utf-8"
    assert '"Content-Type: text/plain; charset=UTF-8\\n"' in PO.read_text(encoding="utf-8")
    entries = {m.id: m for m in cat if m.id}
    assert set(entries) == msgids_in_source()
    for msgid, message in entries.items():
        assert isinstance(message.string, str), msgid
        assert message.string.strip(), f"untranslated: {msgid}"
        assert not message.fuzzy, msgid
        names = PLACEHOLDER.findall(msgid)
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(names), msgid
        formats(msgid, names)  # a literal % is written %%
        formats(message.string, names)
    assert not cat.obsolete


def zh() -> Translations:
    buf = io.BytesIO()
    write_mo(buf, catalogue())
    buf.seek(0)
    return Translations(buf)


def test_an_implausible_value_reads_in_chinese() -> None:
    with pytest.raises(Implausible) as caught:
        check(Vitals(systolic=400))
    assert caught.value.text(zh().gettext) == (
        "您量的高压（收缩压）是400毫米汞柱，不在合理范围（50–300毫米汞柱）内。请再量一次。"  # noqa: RUF001
    )
    with pytest.raises(Implausible) as caught:
        check(Vitals(spo2=40))
    assert caught.value.text(zh().gettext) == (
        "您量的血氧是40%，不在合理范围（50%–100%）内。请再量一次。"  # noqa: RUF001
    )
    with pytest.raises(Implausible) as caught:
        check(Vitals(heart_rate=300))
    assert caught.value.text(zh().gettext) == (
        "您量的心率是每分钟300次，不在合理范围（每分钟20–250次）内。请再量一次。"  # noqa: RUF001
    )
    with pytest.raises(Implausible) as caught:
        check(Vitals(systolic=110, diastolic=120))
    assert caught.value.text(zh().gettext) == (
        "您量的低压（舒张压）是120毫米汞柱，应该比高压（收缩压）110毫米汞柱低。请再量一次。"  # noqa: RUF001
    )


def test_a_flag_reads_in_chinese() -> None:
    [flag] = flags(Vitals(systolic=190))
    assert zh().gettext(flag.message) == "您的血压非常高。请马上看医生。"
