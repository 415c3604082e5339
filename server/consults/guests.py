"""Guest links of a consult: a one-time link into its call for someone without an account.

Either doctor of a consult (a GP of the requesting clinic, or the specialist who took
it) invites a guest (the patient at home, a relative, an interpreter) while the consult
is accepted or live. The link `{public base}/consults/guest/{token}` works once:
opening it spends the token and issues a new random credential, kept by the guest's
browser as the guest cookie, bound to that one consult. The cookie lets the same browser
back into the call (a reload, a network drop) until the link's expiry, its revocation,
or the end of the consult. A guest has no principal: the call (its page and signaling
socket) is all a guest reaches, and a guest always waits in the lobby.

Only SHA-256 digests of the token and of the credential are stored. Invitations,
redemptions (and refused ones) and revocations are audited; a guest's own events name
the actor `guest:{id}` with no user id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import User
from server.audit.service import DENIED, FAILURE, Recorder
from server.consults import service
from server.consults.models import CALLABLE, Consult, ConsultGuest
from server.db import utcnow
from server.errors import Conflict, DomainError, InvalidInput, NotFound
from server.identity import Actor, Principal, Role
from server.settings import Settings

LABEL_MAX = 100
GUEST_NAME = "Guest"
"""How a guest invited without a label is called in the call."""
LIST_LIMIT = 100
TOKEN_BYTES = 32


class LinkState(StrEnum):
    """Where a guest link stands."""

    OPEN = "open"
    """Not opened yet."""
    REDEEMED = "redeemed"
    """Opened: its browser holds the guest cookie, valid until expiry."""
    EXPIRED = "expired"
    REVOKED = "revoked"
    ENDED = "ended"
    """The consult is over (or cannot be called any more)."""


class LinkGone(DomainError):
    """A guest link that cannot be opened: used already, expired, revoked or its call over."""

    status = 410
    code = "gone"

    def __init__(self, message: str, *, state: LinkState | None) -> None:
        super().__init__(message, details={"state": state.value if state else None})
        self.state = state


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a guest link lasts unless told, and at most."""

    default: timedelta
    longest: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The policy configured in settings."""
        return cls(
            default=timedelta(minutes=settings.consult_guest_minutes),
            longest=timedelta(minutes=settings.consult_guest_max_minutes),
        )


@dataclass(frozen=True, slots=True)
class GuestLink:
    """A guest link as the consult's doctors see it (never its token)."""

    id: int
    consult_id: int
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    revoked_at: datetime | None
    state: LinkState


@dataclass(frozen=True, slots=True)
class Invitation:
    """A new guest link: its token (shown once, in the URL) and the link."""

    token: str
    link: GuestLink

    def url(self, base: str) -> str:
        """The link to hand to the guest, under the server's public base URL."""
        return f"{base.rstrip('/')}/consults/guest/{self.token}"


@dataclass(frozen=True, slots=True)
class GuestMember:
    """Who a guest cookie makes its browser: a guest of one consult, while `valid`."""

    guest_id: int
    consult_id: int
    org_id: int
    label: str
    expires_at: datetime
    state: LinkState

    @property
    def name(self) -> str:
        """The guest's name in the call: the link's label, or "Guest"."""
        return self.label or GUEST_NAME

    @property
    def valid(self) -> bool:
        """True while the guest may (re)join the call."""
        return self.state is LinkState.REDEEMED


@dataclass(frozen=True, slots=True)
class Redeemed:
    """An opened link: the guest it made and the credential for the guest cookie."""

    guest: GuestMember
    credential: str


def digest(secret: str) -> str:
    """SHA-256 (hex) of a token or a credential: what the database keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


def guest_actor(guest: GuestMember, *, client_addr: str = "") -> Actor:
    """The audit actor of a guest: no user, named by the guest link's id."""
    return Actor(
        user_id=None,
        username=f"guest:{guest.guest_id}",
        org_id=guest.org_id,
        client_addr=client_addr,
    )


def _state(row: ConsultGuest, status: str, now: datetime) -> LinkState:
    if row.revoked_at is not None:
        return LinkState.REVOKED
    if status not in CALLABLE:
        return LinkState.ENDED
    if row.expires_at <= now:
        return LinkState.EXPIRED
    return LinkState.REDEEMED if row.redeemed_at is not None else LinkState.OPEN


def _member(row: ConsultGuest, consult: Consult, now: datetime) -> GuestMember:
    state = _state(row, consult.status, now)
    return GuestMember(
        guest_id=row.id,
        consult_id=row.consult_id,
        org_id=consult.org_id,
        label=row.label,
        expires_at=row.expires_at,
        state=state,
    )


def _clean_label(label: str | None) -> str:
    text = " ".join((label or "").split())
    if len(text) > LABEL_MAX:
        raise InvalidInput(f"A guest's label is at most {LABEL_MAX} characters.")
    return text


async def _doctor_view(session: AsyncSession, caller: Principal, consult_id: int) -> service.View:
    """The consult if the caller is one of its doctors (its clinic's GPs, its specialist)."""
    view = await service.member(session=session, caller=caller, consult_id=consult_id)
    if caller.role is Role.SPECIALIST and view.consult.specialist_id != caller.user_id:
        raise Conflict(
            f"Consult {consult_id} is offered to you: accept it first.",
            details={"status": view.consult.status},
        )
    return view


async def _links(session: AsyncSession, *where: ColumnElement[bool]) -> list[GuestLink]:
    now = utcnow()
    rows = (
        await session.execute(
            select(ConsultGuest, Consult.status, User.username)
            .join(Consult, Consult.id == ConsultGuest.consult_id)
            .join(User, User.id == ConsultGuest.created_by)
            .where(*where)
            .order_by(ConsultGuest.created_at.desc(), ConsultGuest.id.desc())
            .limit(LIST_LIMIT)
            .execution_options(populate_existing=True)
        )
    ).all()
    return [
        GuestLink(
            id=row.id,
            consult_id=row.consult_id,
            label=row.label,
            created_by=creator,
            created_at=row.created_at,
            expires_at=row.expires_at,
            redeemed_at=row.redeemed_at,
            revoked_at=row.revoked_at,
            state=_state(row, status, now),
        )
        for row, status, creator in rows
    ]


# The doctors' side -------------------------------------------------------------------


async def invite(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    policy: Policy,
    consult_id: int,
    label: str | None = None,
    expires_in_minutes: int | None = None,
) -> Invitation:
    """Either doctor invites a guest into an accepted or live consult's call: a new link."""
    view = await _doctor_view(session, caller, consult_id)
    if view.consult.status not in CALLABLE:
        raise Conflict(
            f"Consult {consult_id} is {view.consult.status}: guests join accepted or live calls.",
            details={"status": view.consult.status},
        )
    text = _clean_label(label)
    lasting = policy.default
    if expires_in_minutes is not None:
        if not 0 < expires_in_minutes <= policy.longest.total_seconds() // 60:
            raise InvalidInput(
                f"A guest link lasts 1 to {int(policy.longest.total_seconds() // 60)} minutes.",
                details={"max_minutes": int(policy.longest.total_seconds() // 60)},
            )
        lasting = timedelta(minutes=expires_in_minutes)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    row = ConsultGuest(
        consult_id=consult_id,
        token_digest=digest(token),
        label=text,
        created_by=caller.user_id,
        created_at=now,
        expires_at=now + lasting,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        action="consult.guest.invite",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
        details={"guest": row.id, "label": text, "expires_at": row.expires_at},
    )
    found = await _links(session, ConsultGuest.id == row.id)
    return Invitation(token=token, link=found[0])


async def links(*, session: AsyncSession, caller: Principal, consult_id: int) -> list[GuestLink]:
    """The guest links of a consult, newest first (either doctor; never their tokens)."""
    await _doctor_view(session, caller, consult_id)
    return await _links(session, ConsultGuest.consult_id == consult_id)


async def revoke(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    consult_id: int,
    guest_id: int,
) -> GuestLink:
    """Either doctor revokes a guest link (opened or not): it and its guest cookie stop working.

    The caller closes the guest's sockets once this has committed (`Rooms.kick`).
    Revoking a revoked link changes nothing.
    """
    view = await _doctor_view(session, caller, consult_id)
    if not 0 < guest_id <= service.MAX_ID:
        raise NotFound(f"No guest {guest_id} of consult {consult_id}.")
    won = await session.scalar(
        update(ConsultGuest)
        .where(
            ConsultGuest.id == guest_id,
            ConsultGuest.consult_id == consult_id,
            ConsultGuest.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow(), revoked_by=caller.user_id)
        .returning(ConsultGuest.id)
        .execution_options(synchronize_session=False)
    )
    found = await _links(
        session, ConsultGuest.id == guest_id, ConsultGuest.consult_id == consult_id
    )
    if not found:
        raise NotFound(f"No guest {guest_id} of consult {consult_id}.")
    if won is not None:
        await audit.record(
            session,
            action="consult.guest.revoke",
            object_type="consult",
            object_id=consult_id,
            org_id=view.consult.org_id,
            details={"guest": guest_id, "label": found[0].label},
        )
    return found[0]


# The guest's side --------------------------------------------------------------------


_GONE = {
    LinkState.REDEEMED: "This link has been used already; ask the doctor for a new one.",
    LinkState.EXPIRED: "This link has expired; ask the doctor for a new one.",
    LinkState.REVOKED: "This link was withdrawn by the doctor; ask them for a new one.",
    LinkState.ENDED: "This consult has ended; the link no longer works.",
}


async def redeem(
    *,
    session: AsyncSession,
    audit: Recorder,
    token: str,
    credential: str | None = None,
) -> Redeemed | GuestMember:
    """Open a guest link: spend it once, issuing the guest credential (`Redeemed`).

    A browser that opened this link already and still holds its valid guest cookie
    (`credential`) gets its guest back (`GuestMember`) instead. Anything else raises
    LinkGone, audited as a refused redemption.
    """
    now = utcnow()
    found = (
        (
            await session.execute(
                select(ConsultGuest, Consult)
                .join(Consult, Consult.id == ConsultGuest.consult_id)
                .where(ConsultGuest.token_digest == digest(token))
            )
        ).first()
        if 0 < len(token) <= 128
        else None
    )
    if found is None:
        audit.record_apart(
            session,
            action="consult.guest.redeem",
            outcome=FAILURE,
            object_type="consult_guest",
            details={"reason": "unknown link"},
        )
        raise LinkGone("This link is not valid; ask the doctor for a new one.", state=None)
    row, consult = found
    guest = _member(row, consult, now)
    if (
        guest.valid
        and credential is not None
        and row.credential_digest is not None
        and secrets.compare_digest(row.credential_digest, digest(credential))
    ):
        return guest  # the same browser again: back to the call, nothing spent
    if guest.state is LinkState.OPEN:
        issued = secrets.token_urlsafe(TOKEN_BYTES)
        won = await session.scalar(
            update(ConsultGuest)
            .where(
                ConsultGuest.id == row.id,
                ConsultGuest.redeemed_at.is_(None),
                ConsultGuest.revoked_at.is_(None),
                ConsultGuest.expires_at > now,
            )
            .values(redeemed_at=now, credential_digest=digest(issued))
            .returning(ConsultGuest.id)
            .execution_options(synchronize_session=False)
        )
        if won is not None:
            redeemed = GuestMember(
                guest_id=row.id,
                consult_id=row.consult_id,
                org_id=consult.org_id,
                label=row.label,
                expires_at=row.expires_at,
                state=LinkState.REDEEMED,
            )
            await audit.acting_as(
                guest_actor(redeemed, client_addr=audit.actor.client_addr)
            ).record(
                session,
                action="consult.guest.redeem",
                object_type="consult",
                object_id=row.consult_id,
                org_id=consult.org_id,
                details={"guest": row.id, "label": row.label},
            )
            return Redeemed(guest=redeemed, credential=issued)
        guest = GuestMember(
            guest_id=row.id,
            consult_id=row.consult_id,
            org_id=consult.org_id,
            label=row.label,
            expires_at=row.expires_at,
            state=LinkState.REDEEMED,  # someone else opened it a moment before
        )
    audit.record_apart(
        session,
        action="consult.guest.redeem",
        outcome=DENIED,
        object_type="consult",
        object_id=row.consult_id,
        org_id=consult.org_id,
        details={"guest": row.id, "state": guest.state.value},
    )
    raise LinkGone(_GONE[guest.state], state=guest.state)


async def guest_member(
    *, session: AsyncSession, cookie_value: str | None, consult_id: int
) -> GuestMember | None:
    """The guest a guest credential makes its holder in this consult (None: not a guest of it).

    Check `valid` before letting the guest in: a guest of an expired or revoked link,
    or of a consult that is over, is known but no longer admitted.
    """
    if not cookie_value or len(cookie_value) > 128 or not 0 < consult_id <= service.MAX_ID:
        return None
    found = (
        await session.execute(
            select(ConsultGuest, Consult)
            .join(Consult, Consult.id == ConsultGuest.consult_id)
            .where(
                ConsultGuest.credential_digest == digest(cookie_value),
                ConsultGuest.consult_id == consult_id,
            )
        )
    ).first()
    if found is None:
        return None
    row, consult = found
    return _member(row, consult, utcnow())


def gone_message(state: LinkState) -> str:
    """Why a guest's link no longer lets them in, in plain words."""
    return _GONE.get(state, "This link is not valid; ask the doctor for a new one.")


async def host_name(*, session: AsyncSession, consult_id: int) -> str | None:
    """The display name of the specialist who took the consult (the host a guest waits for)."""
    found = await session.execute(
        select(User.display_name, User.username)
        .join(Consult, Consult.specialist_id == User.id)
        .where(Consult.id == consult_id)
    )
    row = found.first()
    return None if row is None else (row.display_name or row.username)
