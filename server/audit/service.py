"""Write audit events into the hash chain and verify the chain."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.checkpoints import Checkpoint
from server.audit.models import AuditChainHead, AuditEvent
from server.db import in_own_transaction, utcnow
from server.errors import DomainError
from server.identity import Actor

GENESIS = "0" * 64
_HEAD_ID = 1

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


def _chain_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"doorstep-audit-chain-v1", hashlib.sha256).digest()


def head_mac(secret: bytes, last_id: int, last_hash: str) -> str:
    """The MAC of a chain head naming event last_id with hash last_hash."""
    key = hmac.new(secret, b"doorstep-audit-head-v1", hashlib.sha256).digest()
    return hmac.new(key, f"{last_id}:{last_hash}".encode(), hashlib.sha256).hexdigest()


def _digest(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    body = json.dumps(
        [
            event.id,
            event.at.isoformat(),
            event.actor_id,
            event.actor,
            event.org_id,
            event.action,
            event.object_type,
            event.object_id,
            event.client_addr,
            event.outcome,
            event.details,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hmac.new(key, (prev_hash + body).encode(), hashlib.sha256).hexdigest()


class AuditDamaged(DomainError):
    """The audit log cannot be read as a chain (its head is missing)."""

    status = 503
    code = "audit_damaged"


class Event(TypedDict, total=False):
    """What an audit event says: the action, its outcome, the object, organisation, details."""

    action: Required[str]
    outcome: str
    object_type: str
    object_id: str | int
    org_id: int | None
    details: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Recorder:
    """Writes audit events for one actor, chained with the application's secret.

    Services take a recorder and write the events of the changes they make; callers
    (views, pages, the CLI, the DIMSE handlers) only say who is acting.
    """

    secret: bytes
    actor: Actor

    async def record(self, session: AsyncSession, **event: Unpack[Event]) -> AuditEvent:
        """Append one event in the session's transaction (org defaults to the actor's).

        The chain head's row lock serialises writers.
        """
        org_id = event.get("org_id")
        head = (
            await session.execute(
                update(AuditChainHead)
                .where(AuditChainHead.id == _HEAD_ID)
                .values(last_id=AuditChainHead.last_id + 1)
                .returning(AuditChainHead.last_id, AuditChainHead.last_hash)
            )
        ).one()
        next_id, prev_hash = head.last_id, head.last_hash
        row = AuditEvent(
            id=next_id,
            at=utcnow(),
            actor_id=self.actor.user_id,
            actor=self.actor.username,
            org_id=org_id if org_id is not None else self.actor.org_id,
            action=event["action"],
            object_type=event.get("object_type", ""),
            object_id=str(event.get("object_id", "")),
            client_addr=self.actor.client_addr,
            outcome=event.get("outcome", SUCCESS),
            details=json.dumps(
                dict(event.get("details") or {}), sort_keys=True, separators=(",", ":"), default=str
            ),
            prev_hash=prev_hash,
        )
        row.hash = _digest(_chain_key(self.secret), prev_hash, row)
        session.add(row)
        await session.flush()
        await session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == _HEAD_ID)
            .values(last_hash=row.hash, mac=head_mac(self.secret, next_id, row.hash))
        )
        return row

    def record_apart(self, session: AsyncSession, **event: Unpack[Event]) -> None:
        """Record an event apart from the session's transaction, once that has ended.

        For reads and refused attempts: a read stays a read-only transaction (its audit
        event shares a grouped commit with concurrent writers instead of taking the
        write lock itself), and a refusal is kept even when the caller's transaction
        rolls back, as it does when the refusal becomes a 404.
        """

        async def write(alone: AsyncSession) -> None:
            await self.record(alone, **event)

        in_own_transaction(session, write)

    def acting_as(self, actor: Actor) -> Recorder:
        """A recorder for another actor (a user who has just signed in)."""
        return Recorder(self.secret, actor)


@dataclass(frozen=True, slots=True)
class AuditLog:
    """The application's audit log: hands out recorders and verifies the chain."""

    secret: bytes

    def recorder(self, actor: Actor) -> Recorder:
        """A recorder of events attributed to actor."""
        return Recorder(self.secret, actor)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of verifying the audit chain."""

    events: int
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        """True when no event was edited, removed or inserted."""
        return not self.problems


async def verify(
    *,
    session: AsyncSession,
    secret: bytes,
    checkpoints: Sequence[Checkpoint] = (),
    batch: int = 5000,
) -> ChainReport:
    """Recompute the chain from the first event; compare it with the head and the checkpoints.

    The head's MAC shows whether the head was rewound; a checkpoint (kept outside the
    database) shows whether the log was cut behind it, even with the head rewound too.
    """
    key = _chain_key(secret)
    problems: list[str] = []
    expected_id, prev_hash, count = 1, GENESIS, 0
    last_id = 0
    anchors = {c.head_id: c for c in checkpoints}
    while True:
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.id > last_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for event in rows:
            count += 1
            if event.id != expected_id:
                problems.append(f"events {expected_id}..{event.id - 1} are missing")
            if event.prev_hash != prev_hash:
                problems.append(f"event {event.id}: link to the previous event is broken")
            if not hmac.compare_digest(_digest(key, event.prev_hash, event), event.hash):
                problems.append(f"event {event.id}: content does not match its hash")
            anchor = anchors.pop(event.id, None)
            if anchor is not None and anchor.head_hash != event.hash:
                problems.append(
                    f"event {event.id} differs from the checkpoint of {anchor.at.isoformat()}"
                )
            expected_id, prev_hash, last_id = event.id + 1, event.hash, event.id
    head = await session.get(AuditChainHead, _HEAD_ID)
    if head is None:
        problems.append("chain head is missing")
    else:
        if head.last_id != last_id or head.last_hash != prev_hash:
            problems.append(
                f"chain head names event {head.last_id} but the log ends at event {last_id}"
            )
        genesis = head.last_id == 0 and head.last_hash == GENESIS and not head.mac
        expected_mac = head_mac(secret, head.last_id, head.last_hash)
        if not genesis and not head.mac:
            problems.append(
                "chain head has no MAC yet (a log from before version 0004 of the schema); "
                "the next audit event writes it"
            )
        elif not genesis and not hmac.compare_digest(head.mac, expected_mac):
            problems.append("chain head does not match its MAC: it was rewound or edited")
    for anchor in sorted(anchors.values(), key=lambda c: c.head_id):
        problems.append(
            f"the log ends at event {last_id}, but the checkpoint of {anchor.at.isoformat()} "
            f"names event {anchor.head_id}: events were cut off"
        )
    return ChainReport(events=count, problems=tuple(problems))


async def checkpoint(*, session: AsyncSession, secret: bytes) -> Checkpoint:
    """A signed statement of the log's extent now: its event count and newest event."""
    head = await session.get(AuditChainHead, _HEAD_ID)
    if head is None:
        raise AuditDamaged("The audit chain head is missing; run `doorstep audit verify`.")
    return Checkpoint.signed(
        secret, count=head.last_id, head_id=head.last_id, head_hash=head.last_hash, at=utcnow()
    )
