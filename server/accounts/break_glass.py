"""Break-glass: an administrator's emergency access to one organisation's patient data.

Opening one needs a reason and lasts a limited time; opening and ending are
audited under the organisation whose records are opened, and that
organisation's users are shown the grants (`recent_for_organisation`).
While a grant is active, `server.accounts.scope` lets its holder read the
organisation's patients and studies; every such read is audited as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import BreakGlassGrant, Organisation
from server.audit.service import Recorder
from server.db import utcnow
from server.errors import InvalidInput, NotFound
from server.identity import Principal, Role

MAX_MINUTES = 240
DEFAULT_MINUTES = 60
MIN_REASON = 10
SHOWN_FOR = timedelta(days=30)
"""How long an organisation's users see a grant on their home page."""


async def open_grant(
    *,
    session: AsyncSession,
    audit: Recorder,
    caller: Principal,
    org: Organisation,
    reason: str,
    minutes: int,
) -> BreakGlassGrant:
    """Open emergency access to org's records for caller (an administrator), audited."""
    if caller.role is not Role.ADMIN:
        raise InvalidInput("Only administrators use break-glass access.")
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON or len(reason) > 500:
        raise InvalidInput(
            f"Give the reason for emergency access in {MIN_REASON} to 500 characters: "
            "it is shown to the organisation."
        )
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidInput(f"Emergency access lasts 1 to {MAX_MINUTES} minutes.")
    now = utcnow()
    grant = BreakGlassGrant(
        user_id=caller.user_id,
        org_id=org.id,
        reason=reason,
        started_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(grant)
    await session.flush()
    await audit.record(
        session,
        action="break_glass.open",
        object_type="organisation",
        object_id=org.id,
        org_id=org.id,
        details={"grant_id": grant.id, "reason": reason, "minutes": minutes},
    )
    return grant


async def end_grant(
    *, session: AsyncSession, audit: Recorder, caller: Principal, grant_id: int
) -> BreakGlassGrant:
    """End one of the caller's active grants before it expires, audited."""
    grant = await session.get(BreakGlassGrant, grant_id)
    if grant is None or grant.user_id != caller.user_id:
        raise NotFound("No such emergency access of yours.")
    if grant.ended_at is None and grant.expires_at > utcnow():
        grant.ended_at = utcnow()
        await audit.record(
            session,
            action="break_glass.end",
            object_type="organisation",
            object_id=grant.org_id,
            org_id=grant.org_id,
            details={"grant_id": grant.id},
        )
    return grant


async def grants_of(*, session: AsyncSession, user_id: int) -> Sequence[BreakGlassGrant]:
    """A user's grants, newest first."""
    return (
        await session.scalars(
            select(BreakGlassGrant)
            .where(BreakGlassGrant.user_id == user_id)
            .order_by(BreakGlassGrant.id.desc())
            .limit(50)
        )
    ).all()


async def recent_for_organisation(
    *, session: AsyncSession, org_id: int
) -> Sequence[BreakGlassGrant]:
    """The grants on an organisation's records opened in the last SHOWN_FOR, newest first."""
    return (
        await session.scalars(
            select(BreakGlassGrant)
            .where(
                BreakGlassGrant.org_id == org_id,
                BreakGlassGrant.started_at > utcnow() - SHOWN_FOR,
            )
            .order_by(BreakGlassGrant.id.desc())
        )
    ).all()


def is_active(grant: BreakGlassGrant) -> bool:
    """True while the grant gives access."""
    return grant.ended_at is None and grant.expires_at > utcnow()
