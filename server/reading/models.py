"""Reading requests and the drafts of their reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class Priority(StrEnum):
    """How soon a reading is needed; each has its own SLA."""

    STAT = "stat"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """0 for the most urgent; worklists sort by it."""
        return _RANKS[self]


_RANKS = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


class Status(StrEnum):
    """Where a reading request stands."""

    WAITING = "waiting"
    CLAIMED = "claimed"
    SIGNED = "signed"
    CANCELLED = "cancelled"


OPEN = (Status.WAITING, Status.CLAIMED)
"""Statuses of a request that still waits for its report."""


class ReadingRequest(Base):
    """A clinic's request that a specialty reads one study, due by its SLA."""

    __tablename__ = "reading_requests"
    __table_args__ = (
        Index("ix_reading_requests_queue", "specialty", "status", "priority_rank", "due_at"),
        Index("ix_reading_requests_study", "study_id", "specialty", "status"),
        Index("ix_reading_requests_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    """The requesting clinic."""
    study_id: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id", ondelete="CASCADE"))
    study_uid: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    specialty: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text, default="")
    preferred_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=Status.WAITING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The first claim, for turnaround (request to claim)."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the SLA watch found it past due and escalated it (once)."""


class ReportDraft(Base):
    """The unsigned report of a claimed request, autosaved by its reader."""

    __tablename__ = "report_drafts"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("reading_requests.id", ondelete="CASCADE"), primary_key=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    findings: Mapped[str] = mapped_column(Text, default="")
    impression: Mapped[str] = mapped_column(Text, default="")
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReportTemplate(Base):
    """An administrator's version of a report template's text (findings, impression) per kind."""

    __tablename__ = "report_templates"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    """"ecg" or "imaging"."""
    findings: Mapped[str] = mapped_column(Text, default="")
    impression: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
