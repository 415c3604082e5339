"""Request and response bodies of the kiosk API (the contract of the kiosk issue)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from server.schemas import Out, Schema

# Enrolment


class EnrolmentIn(Schema):
    """An administrator asks for a one-time enrolment code for a kiosk device."""

    device: str = Field(min_length=1, max_length=64, description="The kiosk's username.")


class EnrolmentOut(Out):
    """The code (shown once; twelve digits in groups of four) and when it stops working."""

    code: str = Field(description="For example 4821-0937-5512; typed with or without dashes.")
    expires_at: datetime
