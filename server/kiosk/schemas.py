"""Request and response bodies of the kiosk API (the contract of the kiosk issue)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from server.kiosk.followup_schemas import FollowUpOut
from server.schemas import Out, Schema

# Enrolment


class EnrolmentIn(Schema):
    """An administrator asks for a one-time enrolment code for a kiosk device."""

    device: str = Field(min_length=1, max_length=64, description="The kiosk's username.")


class EnrolmentOut(Out):
    """The code (shown once; twelve digits in groups of four) and when it stops working."""

    code: str = Field(description="For example 4821-0937-5512; typed with or without dashes.")
    expires_at: datetime


# Visits and vitals


class VisitIn(Schema):
    """A person checks in: a mobile number or an ID number, with their date of birth."""

    phone: str | None = Field(default=None, min_length=1, max_length=32)
    id_number: str | None = Field(default=None, min_length=1, max_length=40)
    birth_date: date
    consent: bool = Field(
        description="The person agrees that their record and measurements are kept (required)."
    )
    language: Literal["zh", "en"] = "en"


class VisitCreatedOut(Out):
    """The visit begun; `returning` when the person had checked in here before."""

    id: int
    person_id: int
    returning: bool


class VitalsIn(Schema):
    """Measurements, any subset (typed at the kiosk or posted by a connected device)."""

    systolic: int | None = Field(default=None, description="mmHg")
    diastolic: int | None = Field(default=None, description="mmHg")
    heart_rate: int | None = Field(default=None, description="beats per minute")
    spo2: int | None = Field(default=None, description="%")
    glucose_mmol_l: float | None = Field(default=None, description="mmol/L")
    glucose_fasting: bool | None = None
    temperature_c: float | None = Field(default=None, description="°C")
    weight_kg: float | None = Field(default=None, description="kg")
    source: Literal["typed", "device"] = Field(
        default="typed",
        description="An addition to the contract: who entered them (audited).",
    )


class VitalsValues(Out):
    """The vitals of a visit so far (the latest of each measurement), null when not measured."""

    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    glucose_mmol_l: float | None
    glucose_fasting: bool | None
    temperature_c: float | None
    weight_kg: float | None


class FlagOut(Out):
    """A triage flag (docs/kiosk-triage.md), its message in the visit's language."""

    code: str
    severity: Literal["info", "warning", "urgent"]
    message: str


class VitalsOut(Out):
    """The visit's vitals so far and their flags, most severe first."""

    vitals: VitalsValues
    flags: list[FlagOut]


class VisitOut(Out):
    """An open visit of this kiosk."""

    id: int
    person_id: int
    returning: bool
    language: str
    started_at: datetime
    vitals: VitalsValues
    flags: list[FlagOut]
    consult_id: int | None
    due_follow_up: FollowUpOut | None = Field(
        description="A follow-up of this person booked at the kiosk whose time is now "
        "(10 minutes before to 30 after): join it with POST …/follow-ups/{id}/join."
    )


# The queue


class QueueIn(Schema):
    """Join the on-duty queue: a specialty, or the one the flags call for."""

    specialty: str | None = Field(default=None, min_length=1, max_length=64)


class QueueOut(Out):
    """Where the visit stands in the queue."""

    consult_id: int
    position: int = Field(description="1 is next; 0 once a specialist took the consult.")
    estimated_wait_s: int | None = Field(
        description="Seconds; null while nobody is on duty for the specialty."
    )
    status: Literal["waiting", "accepted", "live", "ended", "expired"]
    specialty: str
    on_duty: int
    specialist: str | None


class FinishIn(Schema):
    """How the visit ends: the person finished, or the kiosk reset (inactivity)."""

    how: Literal["finish", "reset"] = "finish"


# Summary and history


class AdviceOut(Out):
    """A note the specialist wrote for the person."""

    kind: str
    text: str
    author: str
    created_at: datetime


class TakeHomeOut(Out):
    """The take-home summary: its link (a short-lived token only), expiry and QR code."""

    url: str
    expires_at: datetime
    qr_svg: str = Field(description="The link as a QR code, SVG markup.")


class SummaryOut(Out):
    """What the person takes home from the visit."""

    visit_id: int
    started_at: datetime
    vitals: VitalsValues
    flags: list[FlagOut]
    advice: list[AdviceOut]
    specialist: str | None
    follow_up: FollowUpOut | None = Field(description="The follow-up booked in this visit.")
    take_home: TakeHomeOut


class ReadingOut(VitalsValues):
    """One visit's vitals (the latest of each measurement in it)."""

    taken_at: datetime
    flags: list[str]


class HistoryOut(Out):
    """A person's vitals per visit, oldest first."""

    person_id: int
    readings: list[ReadingOut]


# The person's GP clinic


class ClinicOut(Out):
    """A GP clinic of the network."""

    id: int
    name: str


class ClinicLinkIn(Schema):
    """Link the person's record to their GP clinic (null: unlink)."""

    clinic_id: int | None = Field(ge=1)


class ClinicLinkOut(Out):
    """The clinic the person's record is linked to now (null: none)."""

    clinic: ClinicOut | None


class LinkedVisitOut(Out):
    """A kiosk visit of a person linked to your clinic, with its vitals and flags."""

    visit_id: int
    person_id: int
    birth_date: date
    corner: str
    started_at: datetime
    vitals: VitalsValues
    flags: list[FlagOut]
