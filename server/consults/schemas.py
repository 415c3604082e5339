"""Request and response bodies of the consults API."""

from __future__ import annotations

from server.schemas import Out, Schema


class DutyIn(Schema):
    """Go on or off duty."""

    on_duty: bool


class DutyOut(Out):
    """Whether you are on duty, for which specialties."""

    on_duty: bool
    specialties: list[str]
