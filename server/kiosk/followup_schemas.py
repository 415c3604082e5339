"""Request and response bodies of the roster and follow-up API (issue 12, parts 5 and 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from server.schemas import Out, Schema


class ShiftIn(Schema):
    """Roster a specialist for one of their specialties: one shift, or weekly for N weeks."""

    specialist: str = Field(min_length=1, max_length=64, description="A specialist's username.")
    specialty: str = Field(min_length=1, max_length=64)
    start: AwareDatetime = Field(description="The shift's start (ISO 8601 with a zone; UTC: Z).")
    end: AwareDatetime = Field(description="The shift's end: after its start, at most 24 h on.")
    weeks: int = Field(
        default=1,
        ge=1,
        le=52,
        description="Repeat weekly: this many shifts, a week apart at the same wall-clock "
        "time of the deployment's time zone (DOORSTEP_TIME_ZONE).",
    )


class ShiftOut(Out):
    """One roster shift."""

    id: int
    specialist: str = Field(description="The specialist's username.")
    specialist_name: str = Field(description="The specialist's display name.")
    specialty: str
    start: datetime
    end: datetime


class RosterQuery(Schema):
    """Which shifts: those overlapping [from, to) (default: the next 7 days), of a specialty."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    from_: AwareDatetime | None = Field(default=None, alias="from", description="Default: now.")
    to: AwareDatetime | None = Field(
        default=None, description="Default: 7 days after 'from'; at most 62 days after it."
    )
    specialty: str | None = Field(default=None, min_length=1, max_length=64)


class SlotsQuery(Schema):
    """The specialty of the follow-up."""

    specialty: str = Field(min_length=1, max_length=64)


class SlotOut(Out):
    """A free follow-up slot."""

    id: str = Field(description='Opaque: book it with POST …/follow-ups {"slot": id}.')
    start: datetime
    end: datetime
    specialist: str = Field(description="The specialist's display name.")


class SlotsOut(Out):
    """The free slots of a specialty: at most 40, soonest first, from the next full hour up
    to 14 days ahead."""

    specialty: str
    slots: list[SlotOut]


class FollowUpIn(Schema):
    """Book a slot: the call is at the kiosk, or from home (a take-home link)."""

    slot: str = Field(min_length=1, max_length=128)
    where: Literal["kiosk", "home"]


class FollowUpOut(Out):
    """A booked follow-up."""

    id: int
    start: datetime
    end: datetime
    specialist: str = Field(description="The specialist's display name.")
    specialty: str
    where: Literal["kiosk", "home"]
    home_url: str | None = Field(
        description="where = home: the take-home link (no personal data in it; it opens the "
        "call from 10 minutes before the start to 30 minutes after). Null for the kiosk."
    )


class JoinOut(Out):
    """The follow-up's consult: join its call like a walk-in's."""

    consult_id: int
