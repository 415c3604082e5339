"""Report webhooks: a clinic's signed reports and addenda POSTed to its receiver, signed.

A delivery row is written in the transaction that signs the report, so a signed report
always has its pending delivery. Senders (one in every server process) claim due
deliveries one by one with a conditional UPDATE that takes a lease on the row
(`attempting_until`) and counts the attempt, so each attempt is made by exactly one
process; the attempt's outcome is written back only by the holder of that attempt.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.service import FAILURE, SUCCESS, Recorder
from server.db import transaction, utcnow
from server.errors import InvalidInput, NotFound
from server.reports import egress
from server.reports.models import ClinicWebhook, WebhookAttempt, WebhookDelivery

if TYPE_CHECKING:
    from server.reports.service import Signed

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
EVENTS = ("report.signed", "report.addendum")
DEFAULT_SCHEDULE = (30.0, 120.0, 600.0, 3600.0, 21600.0)
"""Waits before each retry (30 s, 2 min, 10 min, 1 h, 6 h); after the last, failed."""
TIMEOUT_SECONDS = 10.0
LEASE = timedelta(seconds=60)
"""How long a claimed attempt is the claimer's alone (well beyond the request timeout)."""
SNIPPET = 200
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of generated secrets, not one
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_SEAL_INFO = b"doorstep report webhook secret"
_SEAL_AAD = b"doorstep-webhook-secret/1"


# URLs and secrets ------------------------------------------------------------------


def check_url(url: str, *, allow_loopback: bool) -> str:
    """The webhook URL if acceptable: https to a public host (http only to loopback when
    allowed), no credentials."""
    url = url.strip()
    if not url:
        raise InvalidInput("Give the webhook's URL (https://…).")
    if len(url) > 2048:
        raise InvalidInput("The webhook URL is too long (at most 2048 characters).")
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise InvalidInput("The webhook URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInput(f"The webhook URL cannot be read as a URL: {url[:80]!r}.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("The webhook URL must start with https://.")
    if "@" in parts.netloc:
        raise InvalidInput(
            "The webhook URL must not carry credentials (user:password@host): the receiver "
            "checks the X-Doorstep-Signature header instead."
        )
    if not parts.hostname:
        raise InvalidInput("The webhook URL has no host name.")
    if parts.fragment:
        raise InvalidInput("The webhook URL must not have a #fragment.")
    if parts.scheme == "http" and not (allow_loopback and parts.hostname in LOOPBACK_HOSTS):
        raise InvalidInput(
            "The webhook URL must use https:// (plain http:// is accepted only for 127.0.0.1 "
            "or localhost, when DOORSTEP_WEBHOOK_ALLOW_LOOPBACK=true)."
        )
    literal = egress.address_literal(parts.hostname)
    if literal is not None and not (
        egress.is_public(literal) or (allow_loopback and egress.is_loopback(literal))
    ):
        raise InvalidInput(
            f"The webhook URL points at {literal}, a private or reserved address; "
            "a webhook goes to a public https:// address."
        )
    return url


def shown_url(url: str) -> str:
    """The URL as audit events name it: scheme, host, port and path (no query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _aead(secret_key: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret_key)
    return AESGCM(key)


def seal(secret: str, *, secret_key: bytes) -> str:
    """The webhook secret encrypted with a key derived from the deployment's secret key."""
    nonce = os.urandom(12)
    sealed = _aead(secret_key).encrypt(nonce, secret.encode("utf-8"), _SEAL_AAD)
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(sealed: str, *, secret_key: bytes) -> str | None:
    """The webhook secret, or None when this deployment's secret key cannot open it."""
    try:
        raw = base64.b64decode(sealed)
        return _aead(secret_key).decrypt(raw[:12], raw[12:], _SEAL_AAD).decode("utf-8")
    except (InvalidTag, ValueError):
        return None


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """X-Doorstep-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


# Configuration (admin) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as the organisation page lists it."""

    id: int
    event: str
    report_id: int
    status: str
    attempts: int
    last_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Overview:
    """A clinic's webhook (None when never configured) and its latest deliveries."""

    url: str | None
    enabled: bool
    secret_created_at: datetime | None
    deliveries: list[DeliveryRow]


async def overview(*, session: AsyncSession, org_id: int, limit: int = 20) -> Overview:
    """The organisation's webhook and its last deliveries, newest first."""
    hook = await session.get(ClinicWebhook, org_id)
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.org_id == org_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return Overview(
        url=hook.url if hook else None,
        enabled=bool(hook and hook.enabled),
        secret_created_at=hook.secret_created_at if hook else None,
        deliveries=[
            DeliveryRow(
                id=d.id,
                event=d.event,
                report_id=d.report_id,
                status=d.status,
                attempts=d.attempts,
                last_code=d.last_code,
                last_error=d.last_error,
                next_attempt_at=d.next_attempt_at if d.status == PENDING else None,
                created_at=d.created_at,
            )
            for d in rows
        ],
    )


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def configure(
    *,
    session: AsyncSession,
    audit: Recorder,
    org_id: int,
    url: str,
    allow_loopback: bool,
    secret_key: bytes,
) -> str | None:
    """Set (and enable) the organisation's webhook URL; audited as webhook.configure.

    Returns the new secret when one was generated (the first configuration), else None:
    an existing secret is kept. The secret is shown to the caller once and stored sealed.
    """
    checked = check_url(url, allow_loopback=allow_loopback)
    now = utcnow()
    hook = await session.get(ClinicWebhook, org_id)
    generated: str | None = None
    if hook is None:
        generated = _new_secret()
        hook = ClinicWebhook(
            org_id=org_id,
            url=checked,
            secret=seal(generated, secret_key=secret_key),
            enabled=True,
            secret_created_at=now,
            updated_at=now,
        )
        session.add(hook)
    else:
        hook.url, hook.enabled, hook.updated_at = checked, True, now
    await session.flush()
    await audit.record(
        session,
        action="webhook.configure",
        object_type="webhook",
        object_id=org_id,
        org_id=org_id,
        details={"url": shown_url(checked), "secret": "generated" if generated else "kept"},
    )
    return generated


async def rotate_secret(
    *, session: AsyncSession, audit: Recorder, org_id: int, secret_key: bytes
) -> str:
    """A new secret for the organisation's webhook (the old one stops at once); audited."""
    hook = await session.get(ClinicWebhook, org_id)
    if hook is None:
        raise InvalidInput("Set the webhook's URL first.")
    generated = _new_secret()
    now = utcnow()
    hook.secret, hook.secret_created_at, hook.updated_at = (
        seal(generated, secret_key=secret_key),
        now,
        now,
    )
    await session.flush()
    await audit.record(
        session,
        action="webhook.configure",
        object_type="webhook",
        object_id=org_id,
        org_id=org_id,
        details={"url": shown_url(hook.url), "secret": "generated"},
    )
    return generated


async def disable(*, session: AsyncSession, audit: Recorder, org_id: int) -> None:
    """Stop sending to the organisation's webhook; audited as webhook.disable.

    Deliveries still pending fail at their next attempt ("the webhook is disabled").
    """
    hook = await session.get(ClinicWebhook, org_id)
    if hook is None or not hook.enabled:
        raise InvalidInput("The organisation's webhook is not enabled.")
    hook.enabled, hook.updated_at = False, utcnow()
    await session.flush()
    await audit.record(
        session,
        action="webhook.disable",
        object_type="webhook",
        object_id=org_id,
        org_id=org_id,
        details={"url": shown_url(hook.url)},
    )


async def retry(*, session: AsyncSession, audit: Recorder, org_id: int, delivery_id: int) -> None:
    """Make one more attempt of a failed delivery at once; audited as webhook.retry."""
    again = await session.scalar(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.status == FAILED,
        )
        .values(status=PENDING, next_attempt_at=utcnow(), attempting_until=None)
        .returning(WebhookDelivery.report_id)
        .execution_options(synchronize_session=False)
    )
    if again is None:
        raise NotFound(f"No failed delivery {delivery_id} of this organisation.")
    await audit.record(
        session,
        action="webhook.retry",
        object_type="webhook_delivery",
        object_id=delivery_id,
        org_id=org_id,
        details={"report": again},
    )


# Enqueuing (in the signing transaction) -------------------------------------------


async def enqueue(*, session: AsyncSession, signed: Signed, kind: str) -> int | None:
    """A pending delivery of a just-signed report, in the signature's transaction.

    None when the clinic has no enabled webhook. The payload names no patient: the
    study UID only; the receiver fetches the rest with a token.
    """
    if kind not in EVENTS:
        raise ValueError(f"not a webhook event: {kind}")
    report = signed.report
    hook = await session.get(ClinicWebhook, report.org_id)
    if hook is None or not hook.enabled:
        return None
    record = signed.record
    payload = {
        "type": kind,
        "report_id": report.id,
        "request_id": record["request"]["id"],
        "amends": record["amends"],
        "study_uid": record["study"]["study_uid"],
        "signer": record["signer"]["display_name"],
        "signed_at": record["signed_at"],
    }
    now = utcnow()
    delivery = WebhookDelivery(
        org_id=report.org_id,
        report_id=report.id,
        event=kind,
        payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
        status=PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery.id


def body(*, payload: str, base_url: str) -> bytes:
    """The POST body: the stored event with its links under the public URL."""
    event: dict[str, Any] = json.loads(payload)
    record = f"{base_url}/api/v1/reports/{event['report_id']}"
    event["links"] = {"record": record, "pdf": f"{record}.pdf", "fhir": f"{record}/fhir"}
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")


# Sending --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """An attempt this process holds: the delivery and the attempt's number."""

    id: int
    number: int
    org_id: int
    report_id: int
    event: str
    payload: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or an error; its duration."""

    started_at: datetime
    duration_ms: int
    code: int | None = None
    error: str | None = None
    response: str | None = None
    final: bool = False
    """No retry whatever the schedule (the webhook is disabled)."""

    @property
    def success(self) -> bool:
        """A 2xx answer."""
        return self.code is not None and 200 <= self.code < 300


def _due(now: datetime) -> Any:
    return (
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.attempting_until.is_(None), WebhookDelivery.attempting_until < now),
    )


async def claim(*, session: AsyncSession, delivery_id: int, now: datetime) -> Claimed | None:
    """Take the next attempt of a due delivery: one conditional UPDATE (None if not ours)."""
    row = (
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, *_due(now))
            .values(
                attempting_until=now + LEASE,
                attempts=WebhookDelivery.attempts + 1,
                last_attempt_at=now,
            )
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.attempts,
                WebhookDelivery.org_id,
                WebhookDelivery.report_id,
                WebhookDelivery.event,
                WebhookDelivery.payload,
            )
            .execution_options(synchronize_session=False)
        )
    ).first()
    return Claimed(*row) if row is not None else None


def next_attempt(
    *, number: int, outcome: Outcome, schedule: Sequence[float]
) -> tuple[str, datetime | None]:
    """(status, next attempt) after attempt number `number` (1-based)."""
    if outcome.success:
        return DELIVERED, None
    if outcome.final or number > len(schedule):
        return FAILED, None
    return PENDING, utcnow() + timedelta(seconds=schedule[number - 1])


@dataclass(frozen=True, slots=True)
class Sender:
    """Sends the due deliveries of every clinic; safe to run in several processes at once."""

    sessions: async_sessionmaker[AsyncSession]
    audit: Recorder
    http: aiohttp.ClientSession
    secret_key: bytes
    base_url: str
    allow_loopback: bool
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    timeout: float = TIMEOUT_SECONDS

    async def send_due(self, *, limit: int = 20) -> list[int]:
        """Claim up to `limit` due deliveries and attempt them concurrently; their ids."""
        now = utcnow()
        async with transaction(self.sessions) as session:
            candidates = list(
                await session.scalars(
                    select(WebhookDelivery.id)
                    .where(*_due(now))
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(limit)
                )
            )
        claimed: list[Claimed] = []
        for delivery_id in candidates:
            async with transaction(self.sessions) as session:
                won = await claim(session=session, delivery_id=delivery_id, now=now)
            if won is not None:
                claimed.append(won)
        await asyncio.gather(*(self.attempt(c) for c in claimed))
        return [c.id for c in claimed]

    async def attempt(self, claimed: Claimed) -> Outcome:
        """Make one claimed attempt and record it (delivery row, log, audit event)."""
        outcome = await self._post(claimed)
        status, next_at = next_attempt(
            number=claimed.number, outcome=outcome, schedule=self.schedule
        )
        async with transaction(self.sessions) as session:
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claimed.id,
                    WebhookDelivery.attempts == claimed.number,
                    WebhookDelivery.status == PENDING,
                )
                .values(
                    status=status,
                    next_attempt_at=next_at,
                    attempting_until=None,
                    last_code=outcome.code,
                    last_error=outcome.error,
                    delivered_at=utcnow() if status == DELIVERED else None,
                )
                .execution_options(synchronize_session=False)
            )
            session.add(
                WebhookAttempt(
                    delivery_id=claimed.id,
                    number=claimed.number,
                    started_at=outcome.started_at,
                    duration_ms=outcome.duration_ms,
                    outcome=SUCCESS if outcome.success else FAILURE,
                    code=outcome.code,
                    error=outcome.error,
                    response=outcome.response,
                    next_attempt_at=next_at,
                )
            )
            await self.audit.record(
                session,
                action="webhook.deliver",
                outcome=SUCCESS if outcome.success else FAILURE,
                object_type="webhook_delivery",
                object_id=claimed.id,
                org_id=claimed.org_id,
                details={
                    "event": claimed.event,
                    "report": claimed.report_id,
                    "attempt": claimed.number,
                    "code": outcome.code,
                    "error": outcome.error,
                    "status": status,
                    "next_attempt_at": next_at.isoformat() if next_at else None,
                },
            )
        return outcome

    async def _post(self, claimed: Claimed) -> Outcome:
        started_at = utcnow()
        clock = time.monotonic()

        def ended(**found: Any) -> Outcome:
            duration = round((time.monotonic() - clock) * 1000)
            return Outcome(started_at=started_at, duration_ms=duration, **found)

        async with transaction(self.sessions) as session:
            hook = await session.get(ClinicWebhook, claimed.org_id)
            target = (hook.url, hook.secret) if hook is not None and hook.enabled else None
        if target is None:
            return ended(error="the webhook is disabled", final=True)
        url, sealed = target
        secret = unseal(sealed, secret_key=self.secret_key)
        if secret is None:
            return ended(
                error="the webhook secret cannot be opened with this deployment's secret key: "
                "generate a new secret"
            )
        try:
            check_url(url, allow_loopback=self.allow_loopback)
        except InvalidInput as refused:
            return ended(error=refused.message[:SNIPPET])
        content = body(payload=claimed.payload, base_url=self.base_url)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Doorstep-Webhook/1",
            "X-Doorstep-Event": claimed.event,
            "X-Doorstep-Delivery": str(claimed.id),
            "X-Doorstep-Timestamp": str(timestamp),
            "X-Doorstep-Signature": signature(secret=secret, timestamp=timestamp, body=content),
        }
        try:
            async with self.http.post(
                url,
                data=content,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                answer = await response.content.read(SNIPPET * 4)
                return ended(
                    code=response.status,
                    response=answer.decode("utf-8", "replace")[:SNIPPET] or None,
                )
        except TimeoutError:
            return ended(error=f"no answer within {self.timeout:g} s")
        except aiohttp.ClientConnectorError as error:
            reason = error.os_error.strerror or str(error.os_error)
            return ended(error=f"cannot connect: {reason}"[:SNIPPET])
        except aiohttp.ClientError as error:
            return ended(error=f"{type(error).__name__}: {error}"[:SNIPPET])
