"""Vitals at the kiosk: plausibility limits and triage flags by versioned rules (no I/O).

docs/kiosk-triage.md is the clinician's reading of this module: every rule, its threshold and
its source. The English texts are gettext msgids (marked with `N_`); their placeholders are
Python's `%(name)s`, filled in after translation (`Implausible.text`, `gettext(flag.message)`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from server.errors import InvalidInput

RULES_VERSION = "1"
"""Bumped with every change of a rule's condition, severity, message or specialty."""

Severity = Literal["info", "warning", "urgent"]
SEVERITY_RANK: dict[Severity, int] = {"urgent": 0, "warning": 1, "info": 2}


def N_(message: str) -> str:
    """Mark a msgid for extraction (`pybabel extract -k N_`); translate it where it is shown."""
    return message


@dataclass(frozen=True, slots=True)
class Vitals:
    """One set of measurements, any subset, in the contract's fields and units."""

    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    spo2: int | None = None
    glucose_mmol_l: float | None = None
    glucose_fasting: bool | None = None
    temperature_c: float | None = None
    weight_kg: float | None = None


# --- plausibility -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """The values a device or a typing person can produce for a living adult at a kiosk."""

    low: float
    high: float
    unit: str
    message: str
    """The msgid refusing a value beyond the limit: %(value)s, %(low)s and %(high)s."""


LIMITS: dict[str, Limit] = {
    "systolic": Limit(
        50,
        300,
        "mmHg",
        N_(
            "Systolic blood pressure %(value)s mmHg is outside the possible range "
            "%(low)s–%(high)s mmHg. Please measure again."  # noqa: RUF001
        ),
    ),
    "diastolic": Limit(
        20,
        200,
        "mmHg",
        N_(
            "Diastolic blood pressure %(value)s mmHg is outside the possible range "
            "%(low)s–%(high)s mmHg. Please measure again."  # noqa: RUF001
        ),
    ),
    "heart_rate": Limit(
        20,
        250,
        "/min",
        N_(
            "Heart rate %(value)s beats per minute is outside the possible range "
            "%(low)s–%(high)s beats per minute. Please measure again."  # noqa: RUF001
        ),
    ),
    "spo2": Limit(
        50,
        100,
        "%",
        N_(
            "Blood oxygen %(value)s%% is outside the possible range %(low)s–%(high)s%%. "  # noqa: RUF001
            "Please measure again."
        ),
    ),
    "glucose_mmol_l": Limit(
        1.0,
        40.0,
        "mmol/L",
        N_(
            "Blood sugar %(value)s mmol/L is outside the possible range "
            "%(low)s–%(high)s mmol/L. Please measure again."  # noqa: RUF001
        ),
    ),
    "temperature_c": Limit(
        30.0,
        44.0,
        "°C",
        N_(
            "Temperature %(value)s °C is outside the possible range "
            "%(low)s–%(high)s °C. Please measure again."  # noqa: RUF001
        ),
    ),
    "weight_kg": Limit(
        20,
        400,
        "kg",
        N_(
            "Weight %(value)s kg is outside the possible range "
            "%(low)s–%(high)s kg. Please measure again."  # noqa: RUF001
        ),
    ),
}
"""Per measured field (in contract order) its plausible range, both ends included."""

NOT_BELOW_SYSTOLIC = N_(
    "Diastolic blood pressure %(value)s mmHg must be lower than systolic blood pressure "
    "%(systolic)s mmHg. Please measure again."
)


def _number(value: float) -> str:
    """A value as people write it: 400, 39.5, 1 (not 1.0)."""
    return f"{value:g}"


class Implausible(InvalidInput):
    """A value no device or person can produce; names the field (details["field"])."""

    def __init__(self, field: str, msgid: str, params: dict[str, str]) -> None:
        self.field = field
        self.msgid = msgid
        self.params = params
        super().__init__(self.text(), details={"field": field})

    def text(self, gettext: Callable[[str], str] = N_) -> str:
        """The message in the language of `gettext` (English by default)."""
        return gettext(self.msgid) % self.params


def check(v: Vitals) -> None:
    """Raise the first Implausible value, in contract order; diastolic must be below systolic."""
    for field, limit in LIMITS.items():
        value: float | None = getattr(v, field)
        if value is None:
            continue
        if not (math.isfinite(value) and limit.low <= value <= limit.high):
            params = {
                "value": _number(value),
                "low": _number(limit.low),
                "high": _number(limit.high),
            }
            raise Implausible(field, limit.message, params)
        if field == "diastolic" and v.systolic is not None and v.systolic <= value:
            params = {"value": _number(value), "systolic": _number(v.systolic)}
            raise Implausible(field, NOT_BELOW_SYSTOLIC, params)


# --- triage -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    """A finding for the person: what it is, how urgent, what to do, who should see it."""

    code: str
    severity: Severity
    message: str
    specialty: str | None
    rule: str


@dataclass(frozen=True, slots=True)
class Rule:
    """One documented rule: when `applies`, it raises its flag."""

    id: str
    code: str
    severity: Severity
    message: str
    specialty: str | None
    applies: Callable[[Vitals], bool]

    def flag(self) -> Flag:
        """The flag this rule raises."""
        return Flag(self.code, self.severity, self.message, self.specialty, self.id)


def _at_least(value: float | None, threshold: float) -> bool:
    return value is not None and value >= threshold


def _below(value: float | None, threshold: float) -> bool:
    return value is not None and value < threshold


def _above(value: float | None, threshold: float) -> bool:
    return value is not None and value > threshold


def _in_range(value: float | None, low: float, high: float) -> bool:
    """low <= value < high."""
    return value is not None and low <= value < high


def _crisis(v: Vitals) -> bool:
    return _at_least(v.systolic, 180) or _at_least(v.diastolic, 120)


def _high_bp(v: Vitals) -> bool:
    return not _crisis(v) and (_at_least(v.systolic, 140) or _at_least(v.diastolic, 90))


def _fasting(v: Vitals) -> bool:
    return v.glucose_fasting is True


def _high_sugar_fasting(v: Vitals) -> bool:
    return _fasting(v) and _in_range(v.glucose_mmol_l, 7.0, 16.7)


def _high_sugar_random(v: Vitals) -> bool:
    return not _fasting(v) and _in_range(v.glucose_mmol_l, 11.1, 16.7)


HYPERTENSIVE_CRISIS = N_("Your blood pressure is very high. See a doctor now.")

HIGH_BLOOD_PRESSURE = N_(
    "Your blood pressure is high. Rest for 5 minutes and measure again. "
    "If it is still high, talk to a doctor soon."
)

LOW_BLOOD_PRESSURE = N_(
    "Your blood pressure is low. If you feel dizzy or weak, talk to a doctor now."
)

VERY_SLOW_HEART_RATE = N_("Your heart is beating very slowly. See a doctor now.")

SLOW_HEART_RATE = N_(
    "Your heart is beating slowly. If you feel dizzy or tired, talk to a doctor soon."
)

FAST_HEART_RATE = N_(
    "Your heart is beating fast. Sit and rest for 5 minutes and measure again. "
    "If it is still fast, talk to a doctor soon."
)

VERY_FAST_HEART_RATE = N_("Your heart is beating very fast. See a doctor now.")

VERY_LOW_OXYGEN = N_("The oxygen in your blood is very low. See a doctor now.")

LOW_OXYGEN = N_(
    "The oxygen in your blood is a little low. Warm your hands, sit still and measure "
    "again. If it is still low, talk to a doctor soon."
)

LOW_BLOOD_SUGAR = N_(
    "Your blood sugar is very low. Eat or drink something sweet now, then see a doctor."
)

VERY_HIGH_BLOOD_SUGAR = N_("Your blood sugar is very high. See a doctor now.")

HIGH_BLOOD_SUGAR = N_("Your blood sugar is high. Please talk to a doctor in the next few days.")

HIGH_FEVER = N_("You have a high fever. See a doctor now.")

FEVER = N_(
    "You have a fever. Rest and drink plenty of water. If it does not go down, talk to a doctor."
)

RULES: tuple[Rule, ...] = (
    Rule("BP-1", "hypertensive_crisis", "urgent", HYPERTENSIVE_CRISIS, "cardiology", _crisis),
    Rule("BP-2", "high_blood_pressure", "warning", HIGH_BLOOD_PRESSURE, "cardiology", _high_bp),
    Rule(
        "BP-3",
        "low_blood_pressure",
        "warning",
        LOW_BLOOD_PRESSURE,
        "cardiology",
        lambda v: _below(v.systolic, 90),
    ),
    Rule(
        "HR-1",
        "very_slow_heart_rate",
        "urgent",
        VERY_SLOW_HEART_RATE,
        "cardiology",
        lambda v: _below(v.heart_rate, 40),
    ),
    Rule(
        "HR-2",
        "slow_heart_rate",
        "warning",
        SLOW_HEART_RATE,
        "cardiology",
        lambda v: _in_range(v.heart_rate, 40, 50),
    ),
    Rule(
        "HR-3",
        "fast_heart_rate",
        "warning",
        FAST_HEART_RATE,
        "cardiology",
        lambda v: _above(v.heart_rate, 100) and not _above(v.heart_rate, 130),
    ),
    Rule(
        "HR-4",
        "very_fast_heart_rate",
        "urgent",
        VERY_FAST_HEART_RATE,
        "cardiology",
        lambda v: _above(v.heart_rate, 130),
    ),
    Rule(
        "SPO2-1", "very_low_oxygen", "urgent", VERY_LOW_OXYGEN, None, lambda v: _below(v.spo2, 90)
    ),
    Rule("SPO2-2", "low_oxygen", "warning", LOW_OXYGEN, None, lambda v: _in_range(v.spo2, 90, 94)),
    Rule(
        "GLU-1",
        "low_blood_sugar",
        "urgent",
        LOW_BLOOD_SUGAR,
        None,
        lambda v: _below(v.glucose_mmol_l, 3.9),
    ),
    Rule(
        "GLU-2",
        "very_high_blood_sugar",
        "urgent",
        VERY_HIGH_BLOOD_SUGAR,
        None,
        lambda v: _at_least(v.glucose_mmol_l, 16.7),
    ),
    Rule("GLU-3", "high_blood_sugar", "warning", HIGH_BLOOD_SUGAR, None, _high_sugar_fasting),
    Rule("GLU-4", "high_blood_sugar", "warning", HIGH_BLOOD_SUGAR, None, _high_sugar_random),
    Rule(
        "TEMP-1",
        "high_fever",
        "urgent",
        HIGH_FEVER,
        None,
        lambda v: _at_least(v.temperature_c, 39.0),
    ),
    Rule(
        "TEMP-2",
        "fever",
        "warning",
        FEVER,
        None,
        lambda v: _in_range(v.temperature_c, 37.5, 39.0),
    ),
)
"""Every rule, in the order of docs/kiosk-triage.md's table (fields in contract order)."""


def flags(v: Vitals) -> list[Flag]:
    """The flags the rules raise for plausible vitals: most severe first, then in rule order."""
    found = [rule.flag() for rule in RULES if rule.applies(v)]
    return sorted(found, key=lambda f: SEVERITY_RANK[f.severity])


def specialty_for(found: list[Flag]) -> str:
    """The on-duty queue to join: "cardiology" when a flag asks for it, else "general"."""
    return "cardiology" if any(f.specialty == "cardiology" for f in found) else "general"
