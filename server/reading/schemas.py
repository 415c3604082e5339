"""Request and response bodies of the reading API (the contract of issue 10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from server.reading.models import Priority
from server.schemas import Out, Schema


class ReadingRequestIn(Schema):
    """A GP asks a specialty to read a study."""

    study_uid: str = Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")
    specialty: str | None = Field(
        default=None,
        max_length=64,
        description="Default: cardiology for an ECG study, radiology for images.",
    )
    priority: Priority = Priority.ROUTINE
    question: str = Field(default="", max_length=2000)
    preferred_hospital: str | None = Field(default=None, max_length=128)


class ReadingRequestOut(Out):
    """A reading request as created: waiting, with its due time from the priority's SLA."""

    id: int
    status: str
    study_uid: str
    specialty: str
    priority: str
    due_at: datetime
    created_at: datetime


class WorklistItem(Out):
    """One request on a specialty worklist (or the requesting clinic's list)."""

    id: int
    status: str = Field(description="waiting, claimed, signed or cancelled")
    priority: str
    due_at: datetime
    overdue: bool
    specialty: str
    study_uid: str
    clinic: str
    question: str
    claimed_by: str | None
    lease_expires_at: datetime | None = None
    created_at: datetime
    requested_by: str
    patient_name: str
    study_description: str
    modalities: list[str]
    report_id: int | None = None


class WorklistQuery(Schema):
    """Filters of a worklist."""

    specialty: str | None = Field(default=None, max_length=64)
    priority: Literal["stat", "urgent", "routine"] | None = None
    clinic: str | None = Field(default=None, max_length=128)
    status: str | None = Field(
        default=None,
        description="waiting, claimed, mine, overdue, signed, cancelled or all; "
        "default: every open request",
    )


class ClaimOut(Out):
    """A claim: the request is the caller's until the lease expires (renewed while they work)."""

    id: int
    status: str
    claimed_by: str | None
    lease_expires_at: datetime | None


class ReleaseOut(Out):
    """A request's new status: waiting again (released) or cancelled."""

    id: int
    status: str


class ReassignIn(Schema):
    """An administrator gives a request to a named reader of its specialty."""

    username: str = Field(min_length=1, max_length=64)


class DraftIn(Schema):
    """The report as the reader writes it (autosaved)."""

    findings: str = Field(default="", max_length=100_000)
    impression: str = Field(default="", max_length=20_000)
    measurements: dict[str, float | int | str | None] = Field(default_factory=dict)


class DraftOut(Out):
    """The saved draft."""

    request_id: int
    status: str = "draft"
    findings: str
    impression: str
    measurements: dict[str, Any]
    updated_at: datetime
    lease_expires_at: datetime | None = None
