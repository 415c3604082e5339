"""Organisations, users, passwords, API tokens, web sessions and login throttling."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from server.accounts import dicom_peers as peers
from server.accounts import passwords
from server.accounts.models import (
    ApiToken,
    LoginFailure,
    Organisation,
    User,
    UserSpecialty,
    WebSession,
)
from server.accounts.principal_cache import Grant
from server.db import utcnow
from server.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from server.identity import OrgKind, Principal, Role

TOKEN_PREFIX = "dst_"  # noqa: S105  (a prefix, not a secret)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
AE_TITLE_RE = re.compile(r"^[A-Z0-9 _.-]{1,16}$")
SPECIALTIES = ("cardiology", "radiology", "dermatology", "general", "neurology", "pulmonology")
_ROLE_ORG_KINDS = {
    Role.GP: {OrgKind.CLINIC},
    Role.SPECIALIST: {OrgKind.HOSPITAL},
    Role.KIOSK: {OrgKind.CORNER, OrgKind.CLINIC},
    Role.ADMIN: {OrgKind.CLINIC, OrgKind.HOSPITAL, OrgKind.CORNER},
}
THROTTLE_BASE_DELAY = timedelta(seconds=30)
"""The wait after max_failures failed sign-ins for a name from one address, doubled per failure."""
# Touch last-seen/last-used at most this often, so reads do not become writes.
_TOUCH_INTERVAL = timedelta(seconds=60)


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (token or session id), as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_org(
    *,
    session: AsyncSession,
    name: str,
    kind: OrgKind,
    ae_title: str | None = None,
    dicom_peers: Sequence[str] = (),
    dicom_cert_sha256: str | None = None,
) -> Organisation:
    """Create an organisation; names, AE titles and pinned certificates are unique."""
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("Organisation name must be 1 to 128 characters.")
    _check_ae_title(ae_title)
    networks = peers.parse_networks(dicom_peers)
    cert = peers.parse_fingerprint(dicom_cert_sha256) if dicom_cert_sha256 else None
    clash = await session.scalar(
        select(Organisation).where(
            or_(Organisation.name == name, Organisation.ae_title == ae_title)
            if ae_title
            else Organisation.name == name
        )
    )
    if clash is not None:
        raise Conflict(f"An organisation named {clash.name!r} or with that AE title exists.")
    if cert is not None:
        await peers.check_certificate_free(session=session, cert_sha256=cert, org_id=None)
    org = Organisation(name=name, kind=kind, ae_title=ae_title, dicom_cert_sha256=cert)
    session.add(org)
    await session.flush()
    if networks:
        await peers.set_networks(session=session, org_id=org.id, networks=networks)
    return org


def _check_ae_title(ae_title: str | None) -> None:
    if ae_title is not None and not AE_TITLE_RE.fullmatch(ae_title):
        raise InvalidInput("AE title must be 1 to 16 of A-Z, 0-9, space, _ . -")


async def set_org_ae_title(*, session: AsyncSession, org: Organisation, ae_title: str) -> None:
    """Give an organisation another calling AE title (unique)."""
    _check_ae_title(ae_title)
    clash = await session.scalar(
        select(Organisation.name).where(
            Organisation.ae_title == ae_title, Organisation.id != org.id
        )
    )
    if clash is not None:
        raise Conflict(f"The AE title {ae_title!r} belongs to {clash!r}.")
    org.ae_title = ae_title
    await session.flush()


async def set_org_dicom_cert(
    *, session: AsyncSession, org: Organisation, cert_sha256: str | None
) -> None:
    """Pin a DICOM TLS client certificate (its SHA-256) to an organisation, or unpin it."""
    cert = peers.parse_fingerprint(cert_sha256) if cert_sha256 else None
    if cert is not None:
        await peers.check_certificate_free(session=session, cert_sha256=cert, org_id=org.id)
    org.dicom_cert_sha256 = cert
    await session.flush()


async def list_orgs(*, session: AsyncSession) -> Sequence[Organisation]:
    """All organisations by name."""
    return (await session.scalars(select(Organisation).order_by(Organisation.name))).all()


async def get_org_by_name(*, session: AsyncSession, name: str) -> Organisation:
    """The organisation with this name."""
    org = await session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        raise NotFound(f"No organisation named {name!r}.")
    return org


async def add_user(
    *,
    session: AsyncSession,
    username: str,
    org: Organisation,
    role: Role,
    password: str | None,
    display_name: str = "",
    specialties: Sequence[str] = (),
) -> User:
    """Create a user in an organisation, checking role, org kind and specialties."""
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput(
            "Username must be 2 to 64 of a-z, 0-9, . _ - and start with a letter or digit."
        )
    check_role(role=role, org_kind=org.kind, specialties=specialties)
    if password is not None and len(password) < passwords.MIN_LENGTH:
        raise InvalidInput(f"Password must be at least {passwords.MIN_LENGTH} characters.")
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"User {username!r} exists.")
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        org_id=org.id,
        role=role,
        password_hash=await passwords.hash_password(password) if password else None,
        specialties=[UserSpecialty(specialty=s) for s in dict.fromkeys(specialties)],
    )
    session.add(user)
    await session.flush()
    await session.refresh(user, ["organisation", "specialties"])
    return user


def check_role(*, role: Role, org_kind: OrgKind, specialties: Sequence[str]) -> None:
    """Refuse a role that does not fit the organisation's kind, or specialties it does not have."""
    if org_kind not in _ROLE_ORG_KINDS[role]:
        raise InvalidInput(f"A {role.value} cannot belong to a {org_kind.value}.")
    unknown = sorted(set(specialties) - set(SPECIALTIES))
    if unknown:
        raise InvalidInput(
            f"Unknown specialty {unknown[0]!r}.", details={"allowed": list(SPECIALTIES)}
        )
    if specialties and role is not Role.SPECIALIST:
        raise InvalidInput("Only specialists have specialties.")


async def list_users(*, session: AsyncSession, role: Role | None = None) -> Sequence[User]:
    """Users, optionally of one role, by username."""
    query = select(User).order_by(User.username)
    if role is not None:
        query = query.where(User.role == role)
    return (await session.scalars(query)).all()


async def get_user(*, session: AsyncSession, username: str) -> User:
    """The user with this username."""
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user {username!r}.")
    return user


async def set_active(*, session: AsyncSession, user: User, active: bool) -> None:
    """Enable or disable a user; disabling ends their sessions and revokes their tokens."""
    user.is_active = active
    if not active:
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as shown once to its owner."""

    token: str
    record: ApiToken


async def create_token(
    *, session: AsyncSession, user: User, label: str = "", expires_days: int | None = 90
) -> IssuedToken:
    """Issue a bearer token; only its hash is kept."""
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise InvalidInput("Token lifetime must be 1 to 3650 days.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id,
        token_hash=secret_hash(token),
        label=label[:128],
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(record)
    await session.flush()
    return IssuedToken(token=token, record=record)


async def list_tokens(*, session: AsyncSession, user_id: int | None = None) -> Sequence[ApiToken]:
    """Tokens, newest first, optionally of one user."""
    query = select(ApiToken).order_by(ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return (await session.scalars(query)).all()


async def revoke_token(*, session: AsyncSession, token_id: int) -> ApiToken:
    """Revoke a token at once."""
    record = await session.get(ApiToken, token_id)
    if record is None:
        raise NotFound("No such token.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


async def load_grant(*, connection: AsyncConnection, token: str) -> Grant:
    """What a live bearer token grants, in one query (plus the user's specialties)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise NotAuthenticated("Invalid bearer token.")
    row = (
        await connection.execute(
            select(
                ApiToken.id,
                ApiToken.expires_at,
                ApiToken.revoked_at,
                ApiToken.last_used_at,
                User.id.label("user_id"),
                User.username,
                User.display_name,
                User.role,
                User.org_id,
                User.is_active,
                Organisation.name.label("org_name"),
                Organisation.kind.label("org_kind"),
            )
            .join(User, User.id == ApiToken.user_id)
            .join(Organisation, Organisation.id == User.org_id)
            .where(ApiToken.token_hash == secret_hash(token))
        )
    ).one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("Invalid or revoked bearer token.")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated("Bearer token has expired.")
    if not row.is_active:
        raise NotAuthenticated("Account is disabled.")
    specialties = await connection.scalars(
        select(UserSpecialty.specialty)
        .where(UserSpecialty.user_id == row.user_id)
        .order_by(UserSpecialty.specialty)
    )
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_INTERVAL:
        await connection.execute(
            update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
        )
        await connection.commit()
    principal = Principal(
        user_id=row.user_id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        org_id=row.org_id,
        org_name=row.org_name,
        org_kind=row.org_kind,
        specialties=tuple(specialties),
        via="token",
    )
    return Grant(principal=principal, expires_at=row.expires_at)


async def check_throttle(
    *, session: AsyncSession, username: str, client_addr: str, max_failures: int, window: timedelta
) -> None:
    """Refuse a sign-in attempt while this address is paying for its failures.

    Failures count per (username, address): after max_failures for a name from one
    address, each further attempt from that address waits THROTTLE_BASE_DELAY, doubled
    per failure up to the window, so a guesser elsewhere never locks the right person
    out. An address that fails max_failures * 4 times over any names waits the window.
    """
    now = utcnow()
    since = now - window
    pair = (
        await session.execute(
            select(func.count(), func.max(LoginFailure.at)).where(
                LoginFailure.username == username,
                LoginFailure.client_addr == client_addr,
                LoginFailure.at > since,
            )
        )
    ).one()
    by_addr = await session.scalar(
        select(func.count()).where(LoginFailure.client_addr == client_addr, LoginFailure.at > since)
    )
    wait = timedelta(0)
    if (by_addr or 0) >= max_failures * 4:
        wait = window
    count, last = pair
    if count >= max_failures and last is not None:
        delay = min(window, THROTTLE_BASE_DELAY * 2 ** (count - max_failures))
        wait = max(wait, last.replace(tzinfo=last.tzinfo or UTC) + delay - now)
    if wait > timedelta(0):
        raise TooManyRequests(
            "Too many failed sign-ins from here. Try again later.",
            retry_after=max(1, math.ceil(wait.total_seconds())),
        )


async def locked_usernames(
    *, session: AsyncSession, max_failures: int, window: timedelta
) -> set[str]:
    """Usernames that some address is being throttled for now (an administrator may unlock)."""
    rows = await session.execute(
        select(LoginFailure.username)
        .where(LoginFailure.at > utcnow() - window)
        .group_by(LoginFailure.username, LoginFailure.client_addr)
        .having(func.count() >= max_failures)
    )
    return {username for (username,) in rows}


async def clear_failures(*, session: AsyncSession, username: str) -> None:
    """Forget every recorded sign-in failure of a username (an administrator's unlock)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.username == username))


async def authenticate(
    *, session: AsyncSession, username: str, password: str, client_addr: str
) -> User | None:
    """The user for a username and password; None (and a recorded failure) otherwise.

    A disabled user with the right password is returned (and no failure recorded) so that
    the caller can say the account is disabled: only someone who knows the password
    learns it, and the caller must refuse the sign-in.
    """
    user = await session.scalar(select(User).where(User.username == username))
    ok = await passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        session.add(LoginFailure(username=username[:64], client_addr=client_addr[:64]))
        return None
    if not user.is_active:
        return user
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.username == username, LoginFailure.client_addr == client_addr[:64]
        )
    )
    return user


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new web session: the cookie secret and its stored row."""

    secret: str
    record: WebSession


async def open_session(
    *, session: AsyncSession, user: User, client_addr: str, max_age: timedelta
) -> OpenedSession:
    """Start a web session for a signed-in user."""
    secret = secrets.token_urlsafe(32)
    record = WebSession(
        token_hash=secret_hash(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        client_addr=client_addr[:64],
        expires_at=utcnow() + max_age,
    )
    session.add(record)
    await session.flush()
    return OpenedSession(secret=secret, record=record)


async def resume_session(
    *, session: AsyncSession, secret: str, idle: timedelta
) -> WebSession | None:
    """The live web session for a cookie secret; None, ending it, when idle or expired."""
    if not secret or len(secret) > 128:
        return None
    record = await session.scalar(
        select(WebSession)
        .where(WebSession.token_hash == secret_hash(secret))
        .options(selectinload(WebSession.user).selectinload(User.specialties))
    )
    if record is None:
        return None
    now = utcnow()
    if record.expires_at <= now or now - record.last_seen_at > idle or not record.user.is_active:
        await session.delete(record)
        return None
    if now - record.last_seen_at > _TOUCH_INTERVAL:
        record.last_seen_at = now
    return record


async def close_session(*, session: AsyncSession, session_id: int) -> None:
    """End a web session."""
    await session.execute(delete(WebSession).where(WebSession.id == session_id))
