"""Signing in and out: throttled credential checks and web sessions, each audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service
from server.audit.service import DENIED, FAILURE, SUCCESS, Recorder
from server.errors import TooManyRequests
from server.identity import Actor, Principal


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in: the new caller and cookie secret, or why there is none."""

    outcome: str  # "signed_in", "failed", "throttled" or "disabled"
    principal: Principal | None = None
    secret: str = ""
    retry_after: int = 0


async def sign_in(
    *,
    session: AsyncSession,
    audit: Recorder,
    username: str,
    password: str,
    client_addr: str,
    max_failures: int,
    failure_window: timedelta,
    max_age: timedelta,
) -> SignIn:
    """Check a username and password (unless throttled) and open a web session; audited."""
    try:
        await service.check_throttle(
            session=session,
            username=username,
            client_addr=client_addr,
            max_failures=max_failures,
            window=failure_window,
        )
    except TooManyRequests as error:
        throttled, retry_after = True, error.retry_after
    else:
        throttled, retry_after = False, 0
    user = None
    if not throttled:
        user = await service.authenticate(
            session=session, username=username, password=password, client_addr=client_addr
        )
    if user is None:
        await audit.record(
            session,
            action="auth.login",
            outcome=DENIED if throttled else FAILURE,
            object_type="user",
            object_id=username[:64],
        )
        return SignIn("throttled" if throttled else "failed", retry_after=retry_after)
    if not user.is_active:
        await audit.acting_as(Actor(user.id, user.username, user.org_id, client_addr)).record(
            session, action="auth.login", outcome=DENIED, object_type="user", object_id=user.id
        )
        return SignIn("disabled")
    opened = await service.open_session(
        session=session, user=user, client_addr=client_addr, max_age=max_age
    )
    await audit.acting_as(Actor(user.id, user.username, user.org_id, client_addr)).record(
        session, action="auth.login", object_type="user", object_id=user.id
    )
    caller = Principal.of(
        user, via="session", csrf_token=opened.record.csrf_token, session_id=opened.record.id
    )
    return SignIn("signed_in", caller, opened.secret)


async def sign_out(*, session: AsyncSession, audit: Recorder, caller: Principal) -> None:
    """End the caller's web session (if it is one), audited as auth.logout."""
    if caller.session_id is None:
        return
    await service.close_session(session=session, session_id=caller.session_id)
    await audit.record(session, action="auth.logout", object_type="user", object_id=caller.user_id)


async def confirm_password(
    *,
    session: AsyncSession,
    audit: Recorder,
    caller: Principal,
    password: str,
    client_addr: str,
    max_failures: int,
    failure_window: timedelta,
) -> bool:
    """Check the signed-in caller's password again, as signing a report asks; audited.

    A wrong password counts towards the same throttle as a failed sign-in (TooManyRequests
    once it applies), so that a left-open session cannot be used to guess it.
    """
    await service.check_throttle(
        session=session,
        username=caller.username,
        client_addr=client_addr,
        max_failures=max_failures,
        window=failure_window,
    )
    user = await service.authenticate(
        session=session, username=caller.username, password=password, client_addr=client_addr
    )
    confirmed = user is not None and user.is_active and user.id == caller.user_id
    await audit.record(
        session,
        action="auth.confirm",
        outcome=SUCCESS if confirmed else FAILURE,
        object_type="user",
        object_id=caller.user_id,
    )
    return confirmed
