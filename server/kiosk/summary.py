"""The end of a visit: what the specialist advised, and the take-home summary behind a QR code.

The take-home link carries only a token: an HMAC of the visit and the link's expiry under
the deployment's secret key, of which the visit keeps the SHA-256. It opens a page with
the visit's vitals, flags and advice until it expires (`kiosk_take_home_hours`), and
nothing else: no name, no number, no other visit.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import segno
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import User
from server.audit.service import DENIED, Recorder
from server.consults.models import Consult, ConsultNote, NoteKind
from server.db import utcnow
from server.errors import NotFound
from server.identity import Principal
from server.kiosk import followups, triage, visits
from server.kiosk.models import KioskVisit

TOKEN_MAX = 128


@dataclass(frozen=True, slots=True)
class Advice:
    """One written note of the specialist for the person."""

    kind: str
    text: str
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Summary:
    """What the person takes home from a visit."""

    visit_id: int
    started_at: datetime
    vitals: triage.Vitals
    flags: list[triage.Flag]
    advice: list[Advice]
    specialist: str | None
    language: str
    follow_up: followups.FollowUp | None


@dataclass(frozen=True, slots=True)
class TakeHome:
    """The take-home link of a visit and its QR code."""

    token: str
    expires_at: datetime

    def qr_svg(self, url: str) -> str:
        """The link as a QR code, inline SVG markup (dark modules on white)."""
        out = io.BytesIO()
        segno.make(url, error="m").save(
            out, kind="svg", xmldecl=False, svgns=True, scale=6, border=4, light="#fff"
        )
        return out.getvalue().decode()


async def _advice(session: AsyncSession, consult_id: int | None) -> tuple[list[Advice], str | None]:
    if consult_id is None:
        return [], None
    rows = (
        await session.execute(
            select(ConsultNote, User.display_name, User.username)
            .join(User, User.id == ConsultNote.author_id)
            .where(ConsultNote.consult_id == consult_id, ConsultNote.kind != NoteKind.CHAT.value)
            .order_by(ConsultNote.created_at, ConsultNote.id)
        )
    ).all()
    advice = [
        Advice(note.kind, note.text, shown or username, note.created_at)
        for note, shown, username in rows
    ]
    specialist = await session.scalar(
        select(User.display_name)
        .join(Consult, Consult.specialist_id == User.id)
        .where(Consult.id == consult_id)
    )
    return advice, specialist


async def _summary(session: AsyncSession, visit: KioskVisit) -> Summary:
    vitals, found = await visits.current(session, visit.id)
    advice, specialist = await _advice(session, visit.consult_id)
    follow_up = await followups.booked(session=session, visit_id=visit.id)
    return Summary(
        visit.id, visit.started_at, vitals, found, advice, specialist, visit.language, follow_up
    )


def _token(secret: bytes, visit_id: int, until: datetime) -> str:
    message = f"kiosk-take-home:{visit_id}:{until.isoformat()}"
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def of_visit(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    secret: bytes,
    lifetime: timedelta,
    visit_id: int,
) -> tuple[Summary, TakeHome]:
    """The open visit's summary, and its take-home link (made on first asking)."""
    visit = await visits.open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    now = utcnow()
    if visit.take_home_until is None or visit.take_home_until <= now:
        visit.take_home_until = (now + lifetime).replace(microsecond=0)
        visit.take_home = _digest(_token(secret, visit.id, visit.take_home_until))
        await session.flush()
    token = _token(secret, visit.id, visit.take_home_until)
    summary = await _summary(session, visit)
    audit.record_apart(
        session,
        action="kiosk.summary.read",
        object_type="kiosk_visit",
        object_id=visit.id,
        details={"advice": len(summary.advice)},
    )
    return summary, TakeHome(token, visit.take_home_until)


async def taken_home(
    *, session: AsyncSession, audit: Recorder, token: str
) -> tuple[Summary, datetime]:
    """The summary a take-home token opens, and until when; NotFound once it expired."""
    visit = None
    if 0 < len(token) <= TOKEN_MAX:
        visit = await session.scalar(
            select(KioskVisit).where(
                KioskVisit.take_home == _digest(token), KioskVisit.take_home_until > utcnow()
            )
        )
    if visit is None or visit.take_home_until is None:
        audit.record_apart(
            session, action="kiosk.take_home.read", outcome=DENIED, object_type="kiosk_visit"
        )
        raise NotFound("This summary has expired or does not exist.")
    audit.record_apart(
        session,
        action="kiosk.take_home.read",
        object_type="kiosk_visit",
        object_id=visit.id,
        org_id=visit.org_id,
    )
    return await _summary(session, visit), visit.take_home_until
