"""A crowd of readers: many specialists with tokens, a queue of requests, and their tally."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import ClientSession
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.archive.models import Study
from server.audit.models import AuditEvent
from server.db import utcnow
from server.identity import Role
from server.reading.models import Priority, ReadingRequest, Status
from tests.support import Client

NEXT = "/api/v1/reading-requests/next"
Http = Client | ClientSession
"""Where readers send their requests: the test client of one app, or a session on a server."""


@dataclass(frozen=True, slots=True)
class Reader:
    """One specialist of the crowd."""

    username: str
    user_id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """Their Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


async def readers(
    session: AsyncSession, *, count: int, specialty: str = "cardiology", prefix: str = "reader"
) -> list[Reader]:
    """Add `count` specialists of one specialty at the hospital, each with a bearer token."""
    org = await accounts.get_org_by_name(session=session, name="hospital")
    crowd = []
    for n in range(count):
        user = await accounts.add_user(
            session=session,
            username=f"{prefix}{n:02d}",
            org=org,
            role=Role.SPECIALIST,
            password=None,
            specialties=(specialty,),
        )
        issued = await accounts.create_token(session=session, user=user)
        crowd.append(Reader(user.username, user.id, issued.token))
    return crowd


async def queue(
    session: AsyncSession,
    *,
    study_uid: str,
    requested_by: int,
    count: int,
    specialty: str = "cardiology",
    lapsed_holder: int | None = None,
    lapsed_every: int = 0,
) -> list[int]:
    """SETUP ONLY: insert `count` reading requests on a stored study in one statement.

    Every `lapsed_every`-th request (when given) is claimed by `lapsed_holder` on a lease
    that ran out a minute ago. Priorities cycle so that "next case" has an order to follow.
    The requests are made here, not through the API, only because a big queue through
    POST /api/v1/reading-requests would take most of the test's time.
    """
    study = await session.scalar(select(Study).where(Study.study_uid == study_uid))
    assert study is not None, study_uid
    now = utcnow()
    priorities = list(Priority)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        priority = priorities[n % len(priorities)]
        row: dict[str, Any] = {
            "org_id": study.org_id,
            "study_id": study.id,
            "study_uid": study.study_uid,
            "requested_by": requested_by,
            "specialty": specialty,
            "priority": priority.value,
            "priority_rank": priority.rank,
            "question": f"crowd request {n}",
            "status": Status.WAITING.value,
            "created_at": now,
            "due_at": now + timedelta(hours=1, seconds=n),
            "claimed_by": None,
            "claimed_at": None,
            "first_claimed_at": None,
            "lease_expires_at": None,
        }
        if lapsed_every and n % lapsed_every == 0:
            assert lapsed_holder is not None
            row |= {
                "status": Status.CLAIMED.value,
                "claimed_by": lapsed_holder,
                "claimed_at": now - timedelta(minutes=20),
                "first_claimed_at": now - timedelta(minutes=20),
                "lease_expires_at": now - timedelta(minutes=1),
            }
        rows.append(row)
    ids = await session.scalars(insert(ReadingRequest).returning(ReadingRequest.id), rows)
    return sorted(ids)


@dataclass
class Tally:
    """What every reader was answered: claims and releases by request, statuses, errors."""

    claims: list[tuple[int, str]] = field(default_factory=list)
    """(request id, claimed_by of the 200 body) in the order the answers came."""
    releases: list[tuple[int, str]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def claimers(self) -> dict[int, set[str]]:
        """Who was answered 200 for each request."""
        found: dict[int, set[str]] = {}
        for request_id, holder in self.claims:
            found.setdefault(request_id, set()).add(holder)
        return found

    def kept(self) -> dict[int, list[str]]:
        """Who should hold each request at the end: readers with more claims than releases.

        A holder may claim again what they hold (it renews their claim), so a reader counts
        once however many claims they were answered.
        """
        count = Counter(self.claims)
        count.subtract(Counter(self.releases))
        found: dict[int, list[str]] = {}
        for (request_id, holder), n in sorted(count.items()):
            if n > 0:
                found.setdefault(request_id, []).append(holder)
        return found


async def post(http: Http, path: str, reader: Reader) -> tuple[int, Any]:
    """POST without a body as the reader; the status and the JSON body (None if none)."""
    async with http.post(path, headers=reader.auth) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def claim_once(
    http: Http, reader: Reader, request_id: int, tally: Tally, start: asyncio.Barrier
) -> None:
    """Wait for the whole crowd at the barrier, then claim one request."""
    await start.wait()
    status, body = await post(http, f"/api/v1/reading-requests/{request_id}/claim", reader)
    _note(tally, reader, status, body)


async def next_until_empty(
    http: Http,
    reader: Reader,
    tally: Tally,
    start: asyncio.Barrier,
    *,
    release_every: int = 0,
    releases: int = 0,
    limit: int = 10_000,
) -> None:
    """Press "next case" until 204; give back every `release_every`-th claim, `releases` times."""
    await start.wait()
    claimed = 0
    for _ in range(limit):
        status, body = await post(http, NEXT, reader)
        if status == 204:
            tally.statuses[204] += 1
            return
        if not _note(tally, reader, status, body):
            continue
        claimed += 1
        if release_every and releases and claimed % release_every == 0:
            releases -= 1
            back, answer = await post(
                http, f"/api/v1/reading-requests/{body['id']}/release", reader
            )
            if back == 200 and answer["status"] == Status.WAITING.value:
                tally.releases.append((body["id"], reader.username))
            else:
                tally.errors.append(f"{reader.username} release {body['id']}: {back} {answer}")
    tally.errors.append(f"{reader.username} never heard 204 in {limit} presses")


def _note(tally: Tally, reader: Reader, status: int, body: Any) -> bool:
    """Count an answer; True for a claim the reader won (checked against its body)."""
    tally.statuses[status] += 1
    if status != 200:
        if status != 409:
            tally.errors.append(f"{reader.username}: {status} {body}")
        return False
    if body.get("status") != Status.CLAIMED.value or body.get("claimed_by") != reader.username:
        tally.errors.append(f"{reader.username}: 200 with {body}")
        return False
    tally.claims.append((body["id"], reader.username))
    return True


@dataclass(frozen=True, slots=True)
class Row:
    """A request as the database has it at the end."""

    status: str
    claimed_by: int | None
    lease_expires_at: datetime | None


async def rows(session: AsyncSession, ids: list[int]) -> dict[int, Row]:
    """The database's view of these requests."""
    found = await session.execute(
        select(
            ReadingRequest.id,
            ReadingRequest.status,
            ReadingRequest.claimed_by,
            ReadingRequest.lease_expires_at,
        ).where(ReadingRequest.id.in_(ids))
    )
    return {i: Row(s, c, e) for i, s, c, e in found}


async def trail(session: AsyncSession, ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """(action, actor) of each request's successful claims and releases, in chain order.

    The audit chain's head is updated in the claim's own transaction, so its order is the
    order in which the database committed the claims and releases.
    """
    found = await session.execute(
        select(AuditEvent.object_id, AuditEvent.action, AuditEvent.actor)
        .where(
            AuditEvent.action.in_(("reading.claim", "reading.release")),
            AuditEvent.object_type == "reading_request",
            AuditEvent.outcome == "success",
            AuditEvent.object_id.in_([str(i) for i in ids]),
        )
        .order_by(AuditEvent.id)
    )
    events: dict[int, list[tuple[str, str]]] = {}
    for object_id, action, actor in found:
        events.setdefault(int(object_id), []).append((action, actor))
    return events


def alternates(events: list[tuple[str, str]]) -> bool:
    """True when claims and releases alternate, each release by the holder of the claim before.

    That is: never two holders at once, in the order the database committed them (a holder
    may claim again what they hold: that renews their own claim).
    """
    holder: str | None = None
    for action, actor in events:
        if action == "reading.claim":
            if holder not in (None, actor):
                return False
            holder = actor
        else:
            if holder != actor:
                return False
            holder = None
    return holder is not None
