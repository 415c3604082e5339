"""The kiosk's records: its enrolment codes, the people of a corner, their visits and the vitals
measured."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

# Enrolment


class KioskEnrolment(Base):
    """A one-time code that turns a browser into a kiosk device; only its SHA-256 is kept."""

    __tablename__ = "kiosk_enrolments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the code's digits, without separators."""
    device_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_from: Mapped[str | None] = mapped_column(String(64))
    """The client address that redeemed the code."""
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="SET NULL"))
    """The device token (kiosk cookie) the code was exchanged for."""


# People and visits


class KioskPerson(Base):
    """A person who checked in at a corner: their corner record (a patient of the corner
    organisation) and how they are found again.

    `lookup` is an HMAC (the deployment's secret key) of how they identified themself —
    mobile or ID number — with their date of birth; the number itself is not stored.
    """

    __tablename__ = "kiosk_people"
    __table_args__ = (UniqueConstraint("org_id", "lookup", name="uq_kiosk_people_lookup"),)

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    lookup: Mapped[str] = mapped_column(String(64))
    identified_by: Mapped[str] = mapped_column(String(16))
    """phone or id_number."""
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    """When they last agreed to their record being kept and used (at check-in)."""
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL")
    )
    """The GP clinic the person linked their record to: its GPs see their kiosk visits."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KioskVisit(Base):
    """One person's time at one kiosk, from check-in to finish (or the privacy reset)."""

    __tablename__ = "kiosk_visits"
    __table_args__ = (
        Index("ix_kiosk_visits_device_open", "device_id", "closed_at"),
        Index("ix_kiosk_visits_person", "person_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    person_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    known: Mapped[bool] = mapped_column(Boolean, default=False)
    """The person had checked in before (a returning person)."""
    language: Mapped[str] = mapped_column(String(8), default="en")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_how: Mapped[str | None] = mapped_column(String(16))
    """finish, reset (inactivity or reload) or superseded (the next check-in)."""
    consult_id: Mapped[int | None] = mapped_column(ForeignKey("consults.id", ondelete="SET NULL"))
    """The walk-in consult of "see an expert now"."""
    take_home: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the take-home summary's token (the QR code); None until one is made."""
    take_home_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KioskReading(Base):
    """Vitals measured in a visit, as typed or as a device posted them, with their flags."""

    __tablename__ = "kiosk_readings"
    __table_args__ = (Index("ix_kiosk_readings_person", "person_id", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(
        ForeignKey("kiosk_visits.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    systolic: Mapped[int | None] = mapped_column(Integer)
    diastolic: Mapped[int | None] = mapped_column(Integer)
    heart_rate: Mapped[int | None] = mapped_column(Integer)
    spo2: Mapped[int | None] = mapped_column(Integer)
    glucose_mmol_l: Mapped[float | None] = mapped_column(Float)
    glucose_fasting: Mapped[bool | None] = mapped_column(Boolean)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The triage flags of the visit's vitals after this reading (codes and severities)."""
    rules_version: Mapped[str] = mapped_column(String(16), default="")


# Roster and follow-ups


class RosterShift(Base):
    """A specialist's rostered time on duty for one of their specialties (one-off, UTC).

    A weekly shift is kept as one row per week ("repeat weekly for N weeks" makes them).
    """

    __tablename__ = "kiosk_roster_shifts"
    __table_args__ = (
        Index("ix_kiosk_roster_shifts_time", "specialty", "starts_at", "ends_at"),
        Index("ix_kiosk_roster_shifts_user", "user_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    specialty: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KioskFollowUp(Base):
    """A remote follow-up booked at a kiosk: one slot of a rostered specialist.

    The unique (specialist, start) pair is what makes two kiosks never book one slot.
    `home_token` is the capability of the take-home link (where = home): no personal
    data, and it opens the call only around the booked time.
    """

    __tablename__ = "kiosk_follow_ups"
    __table_args__ = (
        UniqueConstraint("specialist_id", "starts_at", name="uq_kiosk_follow_ups_slot"),
        Index("ix_kiosk_follow_ups_person", "person_id", "starts_at"),
        Index("ix_kiosk_follow_ups_remind", "reminded_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    """The corner where it was booked."""
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_visits.id", ondelete="SET NULL"), index=True
    )
    device_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    """The kiosk that booked it (the consult of a home follow-up is asked in its name)."""
    specialist_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    specialty: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    where: Mapped[str] = mapped_column(String(8))
    """kiosk or home."""
    home_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    consult_id: Mapped[int | None] = mapped_column(ForeignKey("consults.id", ondelete="SET NULL"))
    """The consult of the follow-up's call, once it was joined."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the specialist was reminded (one conditional UPDATE marks it once)."""
