"""Whose patient data a caller may read: organisation scoping, in one place.

Clinicians read their own organisation's records (the roles each kind of record
names). An administrator manages accounts and reads no patient data, except an
organisation's under an active break-glass grant: reasoned, time-limited and
audited, and shown to that organisation.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Select, and_, false, select
from sqlalchemy.orm import InstrumentedAttribute

from server.accounts.models import BreakGlassGrant
from server.db import utcnow
from server.identity import Principal, Role


def readable_organisations(
    caller: Principal, org_id: InstrumentedAttribute[int], *, roles: Collection[Role]
) -> ColumnElement[bool]:
    """SQL condition on an organisation column: the organisations whose records caller reads.

    `roles` are the clinical roles that read these records in their own organisation.
    """
    if caller.role in roles:
        return org_id == caller.org_id
    if caller.role is Role.ADMIN:
        return org_id.in_(break_glass_organisations(caller.user_id))
    return false()


def break_glass_organisations(user_id: int) -> Select[int]:
    """Subquery: the organisations this user holds an active break-glass grant on, right now."""
    now = utcnow()
    return select(BreakGlassGrant.org_id).where(
        and_(
            BreakGlassGrant.user_id == user_id,
            BreakGlassGrant.expires_at > now,
            BreakGlassGrant.ended_at.is_(None),
        )
    )
