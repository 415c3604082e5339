"""Who of the specialists is on duty now; consult requests, their offers, studies, notes and
recordings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class Duty(Base):
    """A specialist's on-duty state: taking consults (and escalations) now, or not."""

    __tablename__ = "duty"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsultStatus(StrEnum):
    """Where a consult stands."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    LIVE = "live"
    ENDED = "ended"
    DECLINED = "declined"
    EXPIRED = "expired"


CALLABLE = (ConsultStatus.ACCEPTED.value, ConsultStatus.LIVE.value)
"""Statuses of a consult whose call can be held: joined, a guest invited, recorded."""


class Consult(Base):
    """A GP's request for a video consult on a patient, offered to one specialist at a time."""

    __tablename__ = "consults"
    __table_args__ = (
        Index("ix_consults_offers", "status", "offered_until"),
        Index("ix_consults_org", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    """The requesting clinic."""
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    specialty: Mapped[str | None] = mapped_column(String(64))
    """The specialty asked for (None for a request to a named specialist)."""
    named_specialist_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    """The one specialist a named request is offered to."""
    reason: Mapped[str] = mapped_column(Text, default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    walk_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A kiosk's "see an expert now": offered round and round while the person waits, never
    expired by the offer watch (the kiosk withdraws it when they leave)."""
    status: Mapped[str] = mapped_column(String(16), default=ConsultStatus.REQUESTED.value)
    offered_to: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    """The specialist the request is offered to now (nobody while it waits for one)."""
    offered_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the current offer (or the wait for someone on duty) lapses."""
    specialist_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    """The specialist who accepted."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    live_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ConsultStudy(Base):
    """A study of the requesting clinic attached to a consult."""

    __tablename__ = "consult_studies"

    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), primary_key=True
    )
    study_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_studies.id", ondelete="CASCADE"), primary_key=True
    )
    study_uid: Mapped[str] = mapped_column(String(64))


class ConsultOffer(Base):
    """One specialist's turn with a request: offered, then accepted, declined or lapsed."""

    __tablename__ = "consult_offers"
    __table_args__ = (Index("ix_consult_offers_user", "user_id", "offered_at"),)

    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16), default="offered")
    """offered, accepted, declined, lapsed or withdrawn."""
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NoteKind(StrEnum):
    """What a consult note is: a chat message of the call, or a doctor's written outcome."""

    CHAT = "chat"
    ADVICE = "advice"
    PRESCRIPTION = "prescription"
    """A prescription suggestion for the GP (the GP prescribes)."""
    REFERRAL_UP = "referral_up"
    """Refer the patient up, to the hospital (the consortium's two-way referral)."""
    REFERRAL_DOWN = "referral_down"
    """Back down to the clinic, for follow-up there."""
    NOTE = "note"


class ConsultNote(Base):
    """A doctor's note on a consult (advice, prescription suggestion, referral), or a chat
    message of its call."""

    __tablename__ = "consult_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    """The doctor who wrote it (None for a guest's chat message)."""
    guest_id: Mapped[int | None] = mapped_column(
        ForeignKey("consult_guests.id", ondelete="SET NULL")
    )
    """The guest link of a guest who wrote it in the call's chat."""
    kind: Mapped[str] = mapped_column(String(16), default=NoteKind.NOTE.value)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsultGuest(Base):
    """A one-time guest link into one consult's call, and the guest credential it became.

    Only SHA-256 digests are kept: of the link's token and of the browser's credential
    that opening the link issues (the guest cookie). Neither is ever stored itself.
    """

    __tablename__ = "consult_guests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), index=True
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the link's token."""
    credential_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the guest cookie issued when the link was opened (None before)."""
    label: Mapped[str] = mapped_column(String(100), default="")
    """Who the guest is, as the inviting doctor put it ("Patient at home"); plain text."""
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ConsultRecording(Base):
    """A consult's recording: both doctors' consent (the GP's with the patient's), then the file.

    The file is `recordings/consult-<id>.webm` below the data directory, named from the
    consult id only; `media_path` is relative to the data directory.
    """

    __tablename__ = "consult_recordings"

    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), primary_key=True
    )
    gp_consent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    gp_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    patient_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    """The patient's consent, as the GP recorded it with theirs."""
    specialist_consent_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    specialist_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When a server process took the recording on (one conditional UPDATE decides which)."""
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    """withdrawn, ended, empty (nobody left in the call), shutdown or failed."""
    media_path: Mapped[str | None] = mapped_column(String(255))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    tracks: Mapped[list[str] | None] = mapped_column(JSON)
    """The kinds of the file's tracks, in order (audio, video)."""
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
