"""Request and response bodies of the reports API (the contract of issue 10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from server.schemas import Out, Schema


class SignIn(Schema):
    """The reader's password, entered again to sign."""

    password: str = Field(min_length=1, max_length=1024)


class AddendumIn(Schema):
    """An addendum's text and the reader's password."""

    text: str = Field(min_length=1, max_length=20_000)
    password: str = Field(min_length=1, max_length=1024)


class CoveredInstance(Out):
    """An instance of the study as the signature covers it."""

    sop_instance_uid: str
    sha256: str


class SignedOut(Out):
    """A report (or addendum) just signed."""

    report_id: int
    signed_at: datetime
    signer: str = Field(description="The signer's username")
    instances: list[CoveredInstance]
    amends: int | None = None


class ReportSummaryOut(Out):
    """A signed report or addendum in a list."""

    report_id: int
    request_id: int
    kind: str = Field(description="report or addendum")
    amends: int | None
    signed_at: datetime
    signer: str
    study_uid: str
    patient_name: str
    specialty: str
    priority: str
    impression: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    addenda: list[int]


class ReportsQuery(Schema):
    """How many reports to list."""

    limit: int = Field(default=200, ge=1, le=1000)


class AcknowledgedOut(Out):
    """Receipt of a report, as recorded."""

    report_id: int
    acknowledged_at: datetime
    acknowledged_by: str


class VerificationOut(Out):
    """What verifying a report PDF found; valid only when problems is empty."""

    valid: bool
    signer: str | None = Field(description="The signer's username, from the signed record")
    signer_name: str | None = None
    signed_at: str | None
    instances: list[dict[str, str]]
    problems: list[str]
    trust: str


ReportRecord = dict[str, Any]
