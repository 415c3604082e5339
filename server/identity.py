"""Who is calling: roles, kinds of organisation, the signed-in principal and the audit actor.

These are the kernel's view of identity: the access rules, the request context and
every feature speak of callers in these terms, while the accounts feature owns how
they are stored and authenticated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.accounts.models import User


class OrgKind(StrEnum):
    """Kinds of organisation in a primary-care network."""

    CLINIC = "clinic"
    HOSPITAL = "hospital"
    CORNER = "corner"


class Role(StrEnum):
    """What a user account is for."""

    GP = "gp"
    SPECIALIST = "specialist"
    KIOSK = "kiosk"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, resolved once per request from a session cookie or a bearer token."""

    user_id: int
    username: str
    display_name: str
    role: Role
    org_id: int
    org_name: str
    org_kind: OrgKind
    specialties: tuple[str, ...]
    via: str
    csrf_token: str = ""
    session_id: int | None = None
    password_change_required: bool = False
    """A web session of a user whose temporary password must be replaced first."""

    @classmethod
    def of(
        cls, user: User, *, via: str, csrf_token: str = "", session_id: int | None = None
    ) -> Principal:
        """Principal for a loaded user (its organisation and specialties loaded)."""
        return cls(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            org_id=user.org_id,
            org_name=user.organisation.name,
            org_kind=user.organisation.kind,
            specialties=tuple(s.specialty for s in user.specialties),
            via=via,
            csrf_token=csrf_token,
            session_id=session_id,
            password_change_required=via == "session" and user.password_change_required,
        )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who an audit event is attributed to."""

    user_id: int | None
    username: str
    org_id: int | None
    client_addr: str = ""
