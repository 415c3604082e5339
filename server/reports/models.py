"""Signed reports, their addenda and deliveries, and the specialists' signing identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
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
