"""The authenticated caller of a request."""

from __future__ import annotations

from dataclasses import dataclass

from server.accounts.models import OrgKind, Role, User


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

    @classmethod
    def of(
        cls, user: User, *, via: str, csrf_token: str = "", session_id: int | None = None
    ) -> Principal:
        """Principal for a loaded user."""
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
        )
