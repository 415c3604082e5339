"""Signed reports, their addenda and deliveries, and the specialists' signing identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class SignedReport(Base):
    """A signed report or addendum: immutable once written."""

    __tablename__ = "signed_reports"
    __table_args__ = (Index("ix_signed_reports_org_signed", "org_id", "signed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("reading_requests.id", ondelete="RESTRICT"), index=True
    )
    amends_id: Mapped[int | None] = mapped_column(
        ForeignKey("signed_reports.id", ondelete="RESTRICT"), index=True
    )
    """For an addendum: the report it corrects."""
    kind: Mapped[str] = mapped_column(String(16))
    """"report" or "addendum"."""
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    """The requesting clinic, which receives the report."""
    study_id: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id", ondelete="RESTRICT"))
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    record: Mapped[str] = mapped_column(Text)
    """The canonical JSON record that the signature covers."""
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    encapsulated_pdf_uid: Mapped[str | None] = mapped_column(String(64))
    sr_uid: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SigningIdentity(Base):
    """A specialist's signing certificate and its key, encrypted at rest."""

    __tablename__ = "signing_identities"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    certificate_pem: Mapped[str] = mapped_column(Text)
    key_pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the DER certificate."""
    authority_fingerprint: Mapped[str] = mapped_column(String(64))
    """The CA that issued it; a replaced CA issues a new identity."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClinicWebhook(Base):
    """A clinic's report webhook: where signed reports are announced, and the signing secret."""

    __tablename__ = "clinic_webhooks"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(Text)
    """The HMAC secret, sealed with a key derived from the deployment's secret (AES-GCM)."""
    enabled: Mapped[bool] = mapped_column(Boolean)
    secret_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One event to deliver to a clinic's webhook, written with the signature it announces."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_org", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(
        ForeignKey("signed_reports.id", ondelete="RESTRICT"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    """"report.signed" or "report.addendum"."""
    payload: Mapped[str] = mapped_column(Text)
    """The event's JSON without its links (they are added from the public URL when sent)."""
    status: Mapped[str] = mapped_column(String(16))
    """"pending", "delivered" or "failed"."""
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempting_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The lease of the process making an attempt now; another may claim it once past."""
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """The delivery log: one row per attempt (its number unique within the delivery)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_webhook_attempts_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    """"success" (a 2xx answer) or "failure"."""
    code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    response: Mapped[str | None] = mapped_column(String(200))
    """The first 200 characters of the receiver's answer."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
