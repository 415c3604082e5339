"""Administrative actions on accounts: each changes state, audits itself and announces the change.

Pages, API views and the `doorstep` command call these and never write audit
events themselves. Changes that must reach every server process (a disabled
user, a revoked token) are announced after the commit through AccountChanges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import dicom_peers as peers
from server.accounts import service
from server.accounts.changes import AccountChanges
from server.accounts.models import ApiToken, Organisation, User
from server.audit.service import Recorder
from server.db import after_commit
from server.errors import InvalidInput
from server.identity import OrgKind, Role

DEVICE_ORG_KINDS = (OrgKind.CORNER, OrgKind.CLINIC)


async def create_organisation(
    *,
    session: AsyncSession,
    audit: Recorder,
    name: str,
    kind: OrgKind,
    ae_title: str | None,
    dicom_peers: Sequence[str] = (),
    dicom_cert_sha256: str | None = None,
) -> Organisation:
    """Create an organisation (with its DICOM peer networks), audited as org.create."""
    org = await service.add_org(
        session=session,
        name=name,
        kind=kind,
        ae_title=ae_title,
        dicom_peers=dicom_peers,
        dicom_cert_sha256=dicom_cert_sha256,
    )
    details: dict[str, object] = {
        "name": org.name,
        "kind": org.kind.value,
        "ae_title": org.ae_title,
    }
    if networks := await peers.networks_of(session=session, org_id=org.id):
        details["dicom_peers"] = networks
    if org.dicom_cert_sha256:
        details["dicom_cert_sha256"] = org.dicom_cert_sha256
    await audit.record(
        session,
        action="org.create",
        object_type="organisation",
        object_id=org.id,
        org_id=org.id,
        details=details,
    )
    return org


@dataclass(frozen=True, slots=True)
class OrganisationChange:
    """What an update changed, field by field: (old, new)."""

    org: Organisation
    changes: dict[str, tuple[object, object]]


async def update_organisation(
    *,
    session: AsyncSession,
    audit: Recorder,
    org: Organisation,
    ae_title: str | None = None,
    add_dicom_peers: Sequence[str] = (),
    clear_dicom_peers: bool = False,
    dicom_cert_sha256: str | None = None,
    clear_dicom_cert: bool = False,
) -> OrganisationChange:
    """Change an organisation's AE title, DICOM peers or pinned certificate; audited as org.update.

    None and empty mean "unchanged"; clearing the peers first and then adding sets the list.
    Only a real change is audited.
    """
    if not (
        ae_title or add_dicom_peers or clear_dicom_peers or dicom_cert_sha256 or clear_dicom_cert
    ):
        raise InvalidInput("Nothing to change: give an AE title, DICOM peers or a certificate.")
    if dicom_cert_sha256 and clear_dicom_cert:
        raise InvalidInput("Either pin a certificate or clear it, not both.")
    added = peers.parse_networks(add_dicom_peers)
    changes: dict[str, tuple[object, object]] = {}
    if ae_title and ae_title != org.ae_title:
        old_title = org.ae_title
        await service.set_org_ae_title(session=session, org=org, ae_title=ae_title)
        changes["ae_title"] = (old_title, org.ae_title)
    before = await peers.networks_of(session=session, org_id=org.id)
    after = sorted(
        dict.fromkeys([*([] if clear_dicom_peers else before), *added]), key=peers.sort_key
    )
    if after != before:
        await peers.set_networks(session=session, org_id=org.id, networks=after)
        changes["dicom_peers"] = (before, after)
    if dicom_cert_sha256 or clear_dicom_cert:
        old_cert = org.dicom_cert_sha256
        await service.set_org_dicom_cert(
            session=session, org=org, cert_sha256=dicom_cert_sha256 or None
        )
        if org.dicom_cert_sha256 != old_cert:
            changes["dicom_cert_sha256"] = (old_cert, org.dicom_cert_sha256)
    if changes:
        await audit.record(
            session,
            action="org.update",
            object_type="organisation",
            object_id=org.id,
            org_id=org.id,
            details={  # the shape of every org.update (see accounts.corrections)
                "name": org.name,
                "before": {k: old for k, (old, _) in changes.items()},
                "after": {k: new for k, (_, new) in changes.items()},
            },
        )
    return OrganisationChange(org=org, changes=changes)


async def create_user(
    *,
    session: AsyncSession,
    audit: Recorder,
    username: str,
    org: Organisation,
    role: Role,
    password: str | None,
    display_name: str = "",
    specialties: tuple[str, ...] | list[str] = (),
) -> User:
    """Create a user account, audited as user.create."""
    user = await service.add_user(
        session=session,
        username=username,
        display_name=display_name,
        org=org,
        role=role,
        password=password,
        specialties=specialties,
    )
    await _record(session, audit, "user.create", user, role=user.role.value)
    return user


async def set_user_active(
    *,
    session: AsyncSession,
    audit: Recorder,
    changes: AccountChanges | None,
    user: User,
    active: bool,
    by_user_id: int | None = None,
) -> None:
    """Enable or disable a user (disabling ends their sessions and tokens); audited."""
    if not active and by_user_id == user.id:
        raise InvalidInput("You cannot disable your own account.")
    await service.set_active(session=session, user=user, active=active)
    await _record(session, audit, "user.enable" if active else "user.disable", user)
    _announce(session, changes, user.id)


async def unlock_user(*, session: AsyncSession, audit: Recorder, user: User) -> None:
    """Forget the user's failed sign-ins, so that no address waits any longer; audited."""
    await service.clear_failures(session=session, username=user.username)
    await _record(session, audit, "user.unlock", user)


async def issue_token(
    *,
    session: AsyncSession,
    audit: Recorder,
    user: User,
    label: str,
    expires_days: int | None,
) -> service.IssuedToken:
    """Issue a bearer token for a user, audited as token.create (the token itself is not)."""
    issued = await service.create_token(
        session=session, user=user, label=label, expires_days=expires_days
    )
    await _record(
        session, audit, "token.create", user, token=issued.record, label=issued.record.label
    )
    return issued


async def enrol_device(
    *,
    session: AsyncSession,
    audit: Recorder,
    username: str,
    display_name: str,
    org: Organisation,
    expires_days: int,
) -> tuple[User, service.IssuedToken]:
    """Create a kiosk device account with its first token, audited as device.enrol."""
    device = await service.add_user(
        session=session,
        username=username,
        display_name=display_name,
        org=org,
        role=Role.KIOSK,
        password=None,
    )
    issued = await service.create_token(
        session=session, user=device, label="enrolment", expires_days=expires_days
    )
    await _record(session, audit, "device.enrol", device, token_id=issued.record.id)
    return device, issued


async def reissue_device_token(
    *, session: AsyncSession, audit: Recorder, device: User, expires_days: int
) -> service.IssuedToken:
    """A new token for an enabled kiosk device."""
    if device.role is not Role.KIOSK:
        raise InvalidInput("Tokens are issued here only for kiosk devices.")
    if not device.is_active:
        raise InvalidInput("Enable the device before issuing it a token.")
    return await issue_token(
        session=session, audit=audit, user=device, label="reissued", expires_days=expires_days
    )


async def revoke_token(
    *, session: AsyncSession, audit: Recorder, changes: AccountChanges | None, token_id: int
) -> ApiToken:
    """Revoke a token at once in every server process, audited as token.revoke."""
    token = await service.revoke_token(session=session, token_id=token_id)
    await _record(session, audit, "token.revoke", token.user, token=token)
    _announce(session, changes, token.user_id)
    return token


@dataclass(frozen=True, slots=True)
class TokenState:
    """One of a user's tokens and whether it still works: active, expired or revoked."""

    id: int
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str


def token_state(token: ApiToken, now: datetime) -> TokenState:
    """Whether a token still works at a moment: active, expired or revoked."""
    if token.revoked_at is not None:
        status = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return TokenState(
        id=token.id,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        status=status,
    )


async def _record(
    session: AsyncSession,
    audit: Recorder,
    action: str,
    user: User,
    *,
    token: ApiToken | None = None,
    **details: object,
) -> None:
    """The audit event of an action on a user (or on one of their tokens)."""
    await audit.record(
        session,
        action=action,
        object_type="user" if token is None else "token",
        object_id=user.id if token is None else token.id,
        org_id=user.org_id,
        details={"username": user.username, **details},
    )


def _announce(session: AsyncSession, changes: AccountChanges | None, user_id: int) -> None:
    """After the commit, tell every process the user's grants changed (none from the CLI)."""
    if changes is not None:
        after_commit(session, partial(changes.user_changed, user_id))
