"""How the pages show a patient: the name split from DICOM PN, the age, the sex spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.patients.models import Patient

SEXES = (("F", "Female"), ("M", "Male"), ("O", "Other"), ("U", "Unknown"))
_SEX_LABELS = dict(SEXES)


@dataclass(frozen=True, slots=True)
class PatientView:
    """A patient as the pages show them."""

    id: int
    family: str
    given: str
    birth_date: date
    age: int
    sex: str
    identifier: str
    created_at: datetime

    @property
    def display_name(self) -> str:
        """'Family, Given' (or just the family name)."""
        return f"{self.family}, {self.given}" if self.given else self.family


def age_on(born: date, today: date) -> int:
    """Completed years between a birth date and a day."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def patient_view(patient: Patient, today: date | None = None) -> PatientView:
    """The page form of a stored patient (name split from DICOM PN Family^Given)."""
    family, _, rest = patient.name.partition("^")
    given = rest.split("^", 1)[0]
    return PatientView(
        id=patient.id,
        family=family,
        given=given,
        birth_date=patient.birth_date,
        age=age_on(patient.birth_date, today or date.today()),
        sex=_SEX_LABELS.get(patient.sex, patient.sex),
        identifier=patient.identifier,
        created_at=patient.created_at,
    )
