"""The on-duty toggle of specialists, and who is on duty for a specialty."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import User, UserSpecialty
from server.audit.service import Recorder
from server.consults.models import Duty
from server.db import utcnow
from server.errors import PermissionDenied
from server.identity import Principal, Role


@dataclass(frozen=True, slots=True)
class DutyState:
    """Whether the caller is on duty, for which specialties."""

    on_duty: bool
    specialties: tuple[str, ...]


async def state(*, session: AsyncSession, caller: Principal) -> DutyState:
    """The caller's on-duty state (never on duty unless they said so)."""
    found = await session.get(Duty, caller.user_id)
    return DutyState(bool(found and found.on_duty), caller.specialties)


async def set_on_duty(
    *, session: AsyncSession, caller: Principal, audit: Recorder, on_duty: bool
) -> DutyState:
    """A specialist goes on or off duty; audited when it changes."""
    if caller.role is not Role.SPECIALIST:
        raise PermissionDenied("Only specialists go on duty.")
    found = await session.get(Duty, caller.user_id)
    if found is None:
        found = Duty(user_id=caller.user_id, on_duty=False)
        session.add(found)
    if found.on_duty != on_duty:
        found.on_duty = on_duty
        found.changed_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            action="duty.on" if on_duty else "duty.off",
            object_type="user",
            object_id=caller.user_id,
        )
    return DutyState(on_duty, caller.specialties)


async def on_duty_for(*, session: AsyncSession, specialty: str) -> list[int]:
    """The active specialists of a specialty who are on duty now (user ids)."""
    rows = await session.scalars(
        select(User.id)
        .join(UserSpecialty, UserSpecialty.user_id == User.id)
        .join(Duty, Duty.user_id == User.id)
        .where(
            UserSpecialty.specialty == specialty,
            User.is_active.is_(True),
            User.role == Role.SPECIALIST,
            Duty.on_duty.is_(True),
        )
        .order_by(User.id)
    )
    return list(rows)
