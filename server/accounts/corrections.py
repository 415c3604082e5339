"""Corrections to accounts: a user's name, role and specialties, passwords, an organisation.

Like `server.accounts.administration`, each action changes state, audits itself
(with the values before and after) and announces changes that other server
processes must hear; the admin pages, the account page and `doorstep user
password` call these and write no audit events themselves.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import passwords, service
from server.accounts.changes import AccountChanges
from server.accounts.models import Organisation, User, UserSpecialty, WebSession
from server.audit.service import Recorder
from server.db import after_commit
from server.errors import Conflict, InvalidInput, NotAuthenticated
from server.identity import OrgKind, Role

# Lower-case letters and digits that cannot be taken for one another (no 0/o, 1/l/i).
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_GROUPS = 4
"""A temporary password is four groups of four characters: about 79 bits."""


def temporary_password() -> str:
    """A random password to read out or type: `k7mp-x2qa-9fne-hw4t`."""
    groups = (
        "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(4))
        for _ in range(TEMPORARY_GROUPS)
    )
    return "-".join(groups)


def _announce(session: AsyncSession, changes: AccountChanges | None, user_id: int) -> None:
    if changes is not None:
        after_commit(session, partial(changes.user_changed, user_id))


async def _record_user(
    session: AsyncSession, audit: Recorder, action: str, user: User, **details: Any
) -> None:
    await audit.record(
        session,
        action=action,
        object_type="user",
        object_id=user.id,
        org_id=user.org_id,
        details={"username": user.username, **details},
    )


async def update_user(
    *,
    session: AsyncSession,
    audit: Recorder,
    changes: AccountChanges | None,
    user: User,
    display_name: str,
    role: Role,
    specialties: Sequence[str],
    by_user_id: int | None = None,
) -> dict[str, Any]:
    """Change a user's display name, role and specialties; audited as user.update.

    The rules of a new account apply (a role fits the organisation's kind, only
    specialists have specialties). Kiosk devices stay devices, and nobody changes
    their own role. Returns what changed (empty when nothing did, and nothing is recorded).
    """
    display_name = display_name.strip() or user.username
    if len(display_name) > 128:
        raise InvalidInput("The display name is at most 128 characters.")
    if role is not user.role and Role.KIOSK in (role, user.role):
        raise InvalidInput("Kiosk devices are enrolled and retired on the devices page.")
    if role is not user.role and by_user_id == user.id:
        raise InvalidInput("You cannot change your own role.")
    chosen = sorted(dict.fromkeys(specialties))
    service.check_role(role=role, org_kind=user.organisation.kind, specialties=chosen)
    before = {
        "display_name": user.display_name,
        "role": user.role.value,
        "specialties": [s.specialty for s in user.specialties],
    }
    after = {"display_name": display_name, "role": role.value, "specialties": chosen}
    changed = [field for field in before if before[field] != after[field]]
    if not changed:
        return {}
    user.display_name = display_name
    user.role = role
    if before["specialties"] != chosen:
        kept = [s for s in user.specialties if s.specialty in chosen]
        added = [UserSpecialty(specialty=s) for s in chosen if s not in before["specialties"]]
        user.specialties = kept + added
    await session.flush()
    await _record_user(
        session,
        audit,
        "user.update",
        user,
        before={f: before[f] for f in changed},
        after={f: after[f] for f in changed},
    )
    _announce(session, changes, user.id)
    return {f: after[f] for f in changed}


async def _end_sessions(session: AsyncSession, user_id: int, keep: int | None = None) -> None:
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        query = query.where(WebSession.id != keep)
    await session.execute(query)


async def reset_password(
    *,
    session: AsyncSession,
    audit: Recorder,
    changes: AccountChanges | None,
    user: User,
    password: str | None = None,
    by_user_id: int | None = None,
) -> str:
    """Set a user's password and end their web sessions; audited as user.password_reset.

    Without a password, a temporary one is made up: returned to be shown once, it must
    be replaced at the next sign-in. An operator's chosen password (`doorstep user
    password`) is not temporary. Failed sign-ins of the name are forgotten too.
    """
    if user.role is Role.KIOSK:
        raise InvalidInput("Kiosk devices have no password; issue the device a new token.")
    if by_user_id == user.id:
        raise InvalidInput("Change your own password on your account page.")
    temporary = password is None
    chosen = temporary_password() if password is None else password
    if len(chosen) < passwords.MIN_LENGTH:
        raise InvalidInput(f"Password must be at least {passwords.MIN_LENGTH} characters.")
    if len(chosen) > 1024:
        raise InvalidInput("Password must be at most 1024 characters.")
    user.password_hash = await passwords.hash_password(chosen)
    user.password_change_required = temporary
    await _end_sessions(session, user.id)
    await service.clear_failures(session=session, username=user.username)
    await _record_user(session, audit, "user.password_reset", user, temporary=temporary)
    _announce(session, changes, user.id)
    return chosen


async def change_own_password(
    *,
    session: AsyncSession,
    audit: Recorder,
    user: User,
    current: str,
    new: str,
    session_id: int | None,
) -> None:
    """A user replaces their password (a temporary one too); their other sessions end.

    Audited as user.password_change; a wrong current password is audited as a failure.
    """
    if not await passwords.verify_password(user.password_hash, current):
        audit.record_apart(
            session,
            action="user.password_change",
            outcome="failure",
            object_type="user",
            object_id=user.id,
            org_id=user.org_id,
            details={"username": user.username},
        )
        raise NotAuthenticated("Your current password is not right.")
    if len(new) < passwords.MIN_LENGTH:
        raise InvalidInput(f"Password must be at least {passwords.MIN_LENGTH} characters.")
    if len(new) > 1024:
        raise InvalidInput("Password must be at most 1024 characters.")
    if new == current:
        raise InvalidInput("Choose a password other than the current one.")
    user.password_hash = await passwords.hash_password(new)
    user.password_change_required = False
    await _end_sessions(session, user.id, keep=session_id)
    await _record_user(session, audit, "user.password_change", user)


async def update_organisation(
    *,
    session: AsyncSession,
    audit: Recorder,
    org: Organisation,
    name: str,
    kind: OrgKind,
    ae_title: str | None,
) -> dict[str, Any]:
    """Rename an organisation, change its kind or AE title; audited as org.update.

    Names and AE titles stay unique, and a kind must still fit every member's role.
    Returns what changed (empty when nothing did, and nothing is recorded).
    """
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("Organisation name must be 1 to 128 characters.")
    if ae_title is not None and not service.AE_TITLE_RE.fullmatch(ae_title):
        raise InvalidInput("AE title must be 1 to 16 of A-Z, 0-9, space, _ . -")
    before: Mapping[str, Any] = {"name": org.name, "kind": org.kind.value, "ae_title": org.ae_title}
    after: Mapping[str, Any] = {"name": name, "kind": kind.value, "ae_title": ae_title}
    changed = [field for field in before if before[field] != after[field]]
    if not changed:
        return {}
    if "name" in changed and await _taken(session, org, Organisation.name == name):
        raise Conflict(f"An organisation named {name!r} exists.")
    if (
        "ae_title" in changed
        and ae_title is not None
        and await _taken(session, org, Organisation.ae_title == ae_title)
    ):
        raise Conflict(f"Another organisation has the AE title {ae_title!r}.")
    if "kind" in changed:
        roles = set(await session.scalars(select(User.role).where(User.org_id == org.id)))
        for role in sorted(roles):
            try:
                service.check_role(role=role, org_kind=kind, specialties=())
            except InvalidInput:
                raise InvalidInput(
                    f"A {kind.value} cannot have {role.value} accounts, and this one has some."
                ) from None
    org.name, org.kind, org.ae_title = name, kind, ae_title
    await session.flush()
    await audit.record(
        session,
        action="org.update",
        object_type="organisation",
        object_id=org.id,
        org_id=org.id,
        details={
            "before": {f: before[f] for f in changed},
            "after": {f: after[f] for f in changed},
        },
    )
    return {f: after[f] for f in changed}


async def _taken(session: AsyncSession, org: Organisation, clash: Any) -> bool:
    found = await session.scalar(select(Organisation.id).where(clash, Organisation.id != org.id))
    return found is not None
