"""Enrolling a kiosk: a one-time code that an administrator creates for a kiosk device account,
exchanged once, on the kiosk itself, for the device credential (an API token of the device,
kept by the kiosk's browser as the kiosk cookie).

A code is twelve digits, shown in groups of four ("4821-0937-5512") so that it is easy to
read out and to type on an on-screen keypad; typed input may carry spaces or dashes. Only
the SHA-256 of its digits is stored. It works once, for `kiosk_enrolment_minutes`. Wrong
codes count per client address towards the sign-in throttle (the accounts' login failures,
under a name no user can have), so that guessing 10^12 codes is out of reach. Creating a
code, redeeming it and every refused redemption are audited (`kiosk.enrolment.create`,
`kiosk.enrol`); the successful redemption names the device as its actor.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import administration
from server.accounts import service as accounts
from server.accounts.models import LoginFailure, User
from server.audit.service import DENIED, Recorder
from server.db import in_own_transaction, utcnow
from server.errors import DomainError, InvalidInput, NotFound, PermissionDenied, TooManyRequests
from server.identity import Actor, Principal, Role
from server.kiosk.models import KioskEnrolment

CODE_DIGITS = 12
CODE_GROUP = 4
DEFAULT_LIFETIME = timedelta(minutes=15)
DEVICE_TOKEN_DAYS = 365
"""How long the device credential (the kiosk cookie's token) lasts."""
THROTTLE_NAME = "#kiosk-enrolment"
"""The name wrong codes are counted under in the login failures (no username has a '#')."""
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015.]+")


class EnrolmentRefused(DomainError):
    """A code that cannot be exchanged: unknown, used already, expired, or its device disabled."""

    code = "enrolment_refused"

    def __init__(self, message: str, *, reason: str, status: int) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason
        self.status = status


REFUSALS = {
    "unknown": (
        404,
        "This code is not right. Check the numbers and try again, "
        "or ask the administrator for a new code.",
    ),
    "used": (410, "This code has been used already. Ask the administrator for a new one."),
    "expired": (410, "This code has expired. Ask the administrator for a new one."),
    "disabled": (
        403,
        "This kiosk has been switched off by the administrator. Ask them to enable it.",
    ),
}


@dataclass(frozen=True, slots=True)
class Credential:
    """A redeemed code: the device token for the kiosk cookie, whose device, until when."""

    token: str
    token_id: int
    device_id: int
    device: str
    expires_at: datetime


def new_code() -> str:
    """Twelve random digits in groups of four: '4821-0937-5512'."""
    digits = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    return "-".join(digits[i : i + CODE_GROUP] for i in range(0, CODE_DIGITS, CODE_GROUP))


def normalise(typed: str) -> str | None:
    """The code's digits from what was typed (spaces and dashes ignored); None if no code."""
    digits = _SEPARATORS.sub("", typed or "")
    if len(digits) != CODE_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def digest(digits: str) -> str:
    """SHA-256 (hex) of a code's digits, as stored."""
    return hashlib.sha256(f"kiosk-enrolment:{digits}".encode()).hexdigest()


async def create_code(
    *,
    session: AsyncSession,
    audit: Recorder,
    caller: Principal,
    device: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> tuple[str, datetime]:
    """An administrator's one-time enrolment code for an active kiosk device; audited.

    Administrators manage the accounts of every organisation (server.accounts.scope), so
    every kiosk device is in their reach.
    """
    if caller.role is not Role.ADMIN:
        raise PermissionDenied("Only administrators create kiosk enrolment codes.")
    user = await session.scalar(select(User).where(User.username == device[:64]))
    if user is None:
        raise NotFound(f"No device {device!r}.")
    if user.role is not Role.KIOSK:
        raise InvalidInput(f"{device!r} is not a kiosk device; enrolment codes are for kiosks.")
    if not user.is_active:
        raise InvalidInput(f"Kiosk {device!r} is disabled; enable it first.")
    code = new_code()
    now = utcnow()
    row = KioskEnrolment(
        code_digest=digest(code.replace("-", "")),
        device_id=user.id,
        created_by=caller.user_id,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        action="kiosk.enrolment.create",
        object_type="user",
        object_id=user.id,
        org_id=user.org_id,
        details={"username": user.username, "enrolment": row.id, "expires_at": row.expires_at},
    )
    return code, row.expires_at


async def redeem(
    *,
    session: AsyncSession,
    audit: Recorder,
    code: str,
    client_addr: str,
    max_failures: int = 5,
    failure_window: timedelta = timedelta(minutes=15),
) -> Credential:
    """Exchange a code, once, for a new device token of its kiosk; audited as kiosk.enrol.

    Two redemptions of one code cannot both win: the code is spent by a conditional
    UPDATE. A refusal (EnrolmentRefused, or TooManyRequests while this address is paying
    for wrong codes) is audited with outcome denied, apart from the rolled-back transaction.
    """
    addr = client_addr[:64]
    try:
        await accounts.check_throttle(
            session=session,
            username=THROTTLE_NAME,
            client_addr=addr,
            max_failures=max_failures,
            window=failure_window,
        )
    except TooManyRequests:
        _refused(session, audit, addr, reason="throttled", wrong=False)
        raise
    digits = normalise(code)
    found = (
        None
        if digits is None
        else (
            await session.execute(
                select(KioskEnrolment, User)
                .join(User, User.id == KioskEnrolment.device_id)
                .where(KioskEnrolment.code_digest == digest(digits))
            )
        ).first()
    )
    if found is None:
        raise _refused(session, audit, addr, reason="unknown", wrong=True)
    row, device = found
    now = utcnow()
    reason = ""
    if row.used_at is not None:
        reason = "used"
    elif row.expires_at <= now:
        reason = "expired"
    elif not device.is_active or device.role is not Role.KIOSK:
        reason = "disabled"
    else:
        won = await session.scalar(
            update(KioskEnrolment)
            .where(
                KioskEnrolment.id == row.id,
                KioskEnrolment.used_at.is_(None),
                KioskEnrolment.expires_at > now,
            )
            .values(used_at=now, used_from=addr)
            .returning(KioskEnrolment.id)
            .execution_options(synchronize_session=False)
        )
        reason = "" if won is not None else "used"
    if reason:
        raise _refused(
            session, audit, addr, reason=reason, wrong=False, enrolment=row.id, device=device
        )
    as_device = audit.acting_as(Actor(device.id, device.username, device.org_id, addr))
    issued = await administration.issue_token(
        session=session,
        audit=as_device,
        user=device,
        label=f"kiosk cookie {now:%Y-%m-%d %H:%M} from {addr or 'unknown'}",
        expires_days=DEVICE_TOKEN_DAYS,
    )
    await session.execute(
        update(KioskEnrolment)
        .where(KioskEnrolment.id == row.id)
        .values(token_id=issued.record.id)
        .execution_options(synchronize_session=False)
    )
    await as_device.record(
        session,
        action="kiosk.enrol",
        object_type="user",
        object_id=device.id,
        org_id=device.org_id,
        details={
            "username": device.username,
            "enrolment": row.id,
            "token_id": issued.record.id,
        },
    )
    expires_at = issued.record.expires_at
    assert expires_at is not None
    return Credential(
        token=issued.token,
        token_id=issued.record.id,
        device_id=device.id,
        device=device.username,
        expires_at=expires_at,
    )


def _refused(
    session: AsyncSession,
    audit: Recorder,
    addr: str,
    *,
    reason: str,
    wrong: bool,
    enrolment: int | None = None,
    device: User | None = None,
) -> EnrolmentRefused:
    """Audit a refused redemption (and count a wrong code) once the transaction has ended."""
    details: dict[str, object] = {"reason": reason}
    org_id = None
    if device is not None:  # plain values: the work runs after the session has closed
        details["username"] = device.username
        org_id = device.org_id

    async def write(alone: AsyncSession) -> None:
        if wrong:
            alone.add(LoginFailure(username=THROTTLE_NAME, client_addr=addr))
        await audit.record(
            alone,
            action="kiosk.enrol",
            outcome=DENIED,
            object_type="kiosk_enrolment",
            object_id=enrolment if enrolment is not None else "",
            org_id=org_id,
            details=details,
        )

    in_own_transaction(session, write)
    status, message = REFUSALS.get(reason, (429, "Too many wrong codes from here."))
    return EnrolmentRefused(message, reason=reason, status=status)
