"""Request and response bodies of the patients API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from server.schemas import Out, Schema

# DICOM PN (PS3.5 6.2): up to five components separated by ^, no backslash or control characters.
_PN_PATTERN = r"^[^\\\x00-\x1f\x7f=]{1,200}$"
# DICOM LO (Patient ID): no backslash (the multi-value separator) and no control characters.
_LO_PATTERN = r"^[^\\\x00-\x1f\x7f]{1,64}$"
EARLIEST_BIRTH_DATE = date(1880, 1, 1)


def _pn_components(value: str) -> str:
    if value.count("^") > 4 or not value.replace("^", "").strip():
        raise ValueError("use Family^Given (at most five ^-separated components)")
    return value


def _plausible_birth_date(value: date) -> date:
    if value > date.today() or value < EARLIEST_BIRTH_DATE:
        raise ValueError("birth date must be in the past and after 1880")
    return value


class PatientIn(Schema):
    """A new patient of the caller's clinic."""

    name: str = Field(min_length=1, max_length=200, pattern=_PN_PATTERN, examples=["Doe^Jane"])
    birth_date: date = Field(
        description=f"YYYY-MM-DD, not in the future and not before {EARLIEST_BIRTH_DATE}.",
        examples=["1970-01-31"],
    )
    sex: Literal["F", "M", "O", "U"]
    identifier: str = Field(min_length=1, max_length=64, pattern=_LO_PATTERN)

    _name = field_validator("name")(_pn_components)
    _birth_date = field_validator("birth_date")(_plausible_birth_date)


class PatientPatch(Schema):
    """Corrections to a patient's demographics: any of the fields, the others stay."""

    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=_PN_PATTERN, examples=["Doe^Jane"]
    )
    birth_date: date | None = None
    sex: Literal["F", "M", "O", "U"] | None = None
    identifier: str | None = Field(default=None, min_length=1, max_length=64, pattern=_LO_PATTERN)

    @field_validator("name", "birth_date", "sex", "identifier")
    @classmethod
    def _given(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be removed; leave it out to keep it")
        if info.field_name == "name":
            return _pn_components(str(value))
        if isinstance(value, date):
            return _plausible_birth_date(value)
        return value

    def changes(self) -> dict[str, object]:
        """The fields that were sent."""
        return {field: getattr(self, field) for field in self.model_fields_set}


class PatientQuery(Schema):
    """Search, paged: every word of q in the name (any order and case), or an identifier prefix."""

    q: str = Field(
        default="",
        max_length=64,
        description="Words of the name in any order and case ('Okafor, Grace', 'grace okafor',"
        " '王小明'), or the start of the identifier ('rc-00')",
    )
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class PatientOut(Out):
    """A patient as stored."""

    id: int
    org_id: int
    name: str
    birth_date: date
    sex: str
    identifier: str
    created_at: datetime
