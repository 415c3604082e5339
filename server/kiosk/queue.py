""" "See an expert now": the on-duty queue of a specialty, from a kiosk visit to its consult.

Joining the queue makes a walk-in consult (consults.service.create with walk_in): offered
to one on-duty specialist of the specialty at a time, round and round, until one accepts
or the person leaves. The position counts the requests of that specialty still waiting
that were made before; the estimate spreads the waits ahead over those on duty, with the
median length of the specialty's recent consults.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import Recorder
from server.consults import duty
from server.consults import service as consults
from server.consults.models import Consult, ConsultStatus
from server.errors import NotFound
from server.events.bus import EventBus
from server.identity import Principal
from server.kiosk import triage, visits

RECENT = 20
"""How many of the specialty's last consults the estimate of a consult's length uses."""
TYPICAL_CONSULT_S = 8 * 60
"""A consult's length when the specialty has no recent ones to go by."""
ANSWER_S = 30
"""About how long an on-duty specialist takes to answer an offer."""
STATES = {
    ConsultStatus.REQUESTED.value: "waiting",
    ConsultStatus.ACCEPTED.value: "accepted",
    ConsultStatus.LIVE.value: "live",
    ConsultStatus.ENDED.value: "ended",
    ConsultStatus.EXPIRED.value: "expired",
    ConsultStatus.DECLINED.value: "expired",
}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a visit's walk-in consult stands."""

    consult_id: int
    status: str
    """waiting, accepted, live, ended or expired."""
    specialty: str
    position: int
    """1 for the next to be seen; 0 once a specialist took it."""
    estimated_wait_s: int | None
    """None while nobody is on duty for the specialty."""
    on_duty: int
    specialist: str | None


async def join(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    policy: consults.Policy,
    visit_id: int,
    specialty: str | None,
) -> tuple[Place, bool]:
    """Queue the visit's person for a specialty (by their flags unless told); (place, new).

    A visit already in the queue (or in its call) stays where it is.
    """
    visit = await visits.open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    if visit.consult_id is not None:
        status = await session.scalar(select(Consult.status).where(Consult.id == visit.consult_id))
        if status in [s.value for s in consults.OPEN]:
            return await place(
                session=session, caller=caller, audit=audit, visit_id=visit.id
            ), False
    _, found = await visits.current(session, visit.id)
    chosen = specialty or triage.specialty_for(found)
    urgent = [f.code for f in found if f.severity == "urgent"]
    reason = "Walk-in at the kiosk of " + caller.org_name
    if found:
        reason += ". Flags: " + ", ".join(f.code for f in found)
    view = await consults.create(
        session=session,
        caller=caller,
        audit=audit,
        bus=bus,
        policy=policy,
        patient_id=visit.person_id,
        specialty=chosen,
        specialist=None,
        reason=reason,
        walk_in=True,
    )
    visit.consult_id = view.consult.id
    await session.flush()
    await audit.record(
        session,
        action="kiosk.queue",
        object_type="kiosk_visit",
        object_id=visit.id,
        details={"consult": view.consult.id, "specialty": chosen, "urgent": urgent},
    )
    return await place(session=session, caller=caller, audit=audit, visit_id=visit.id), True


async def place(
    *, session: AsyncSession, caller: Principal, audit: Recorder, visit_id: int
) -> Place:
    """Where the visit's walk-in consult stands now; NotFound when it never queued."""
    visit = await visits.open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    consult = None
    if visit.consult_id is not None:
        consult = await session.scalar(
            select(Consult)
            .where(Consult.id == visit.consult_id)
            .execution_options(populate_existing=True)
        )
    if consult is None:
        raise NotFound(f"Visit {visit_id} is not in the queue.")
    specialist = None
    if consult.specialist_id is not None:
        view = await consults.member(session=session, caller=caller, consult_id=consult.id)
        specialist = view.accepted_by
    status = STATES.get(consult.status, consult.status)
    if consult.specialty is None:  # a booked follow-up, asked of its specialist by name
        waiting = status == "waiting"
        return Place(
            consult.id, status, "", int(waiting), ANSWER_S if waiting else 0, 1, specialist
        )
    on_duty = len(await duty.on_duty_for(session=session, specialty=consult.specialty))
    if status != "waiting":
        return Place(consult.id, status, consult.specialty, 0, 0, on_duty, specialist)
    ahead = await session.scalar(
        select(func.count(Consult.id)).where(
            Consult.specialty == consult.specialty,
            Consult.status == ConsultStatus.REQUESTED.value,
            or_(
                Consult.created_at < consult.created_at,
                and_(Consult.created_at == consult.created_at, Consult.id < consult.id),
            ),
        )
    )
    position = int(ahead or 0) + 1
    wait = None
    if on_duty:
        length = await typical_length(session, consult.specialty)
        wait = ANSWER_S + math.ceil((position - 1) / on_duty) * length
    return Place(consult.id, status, consult.specialty, position, wait, on_duty, None)


async def typical_length(session: AsyncSession, specialty: str) -> int:
    """The median length in seconds of the specialty's last consults that were held."""
    rows = (
        await session.execute(
            select(Consult.accepted_at, Consult.live_at, Consult.ended_at)
            .where(
                Consult.specialty == specialty,
                Consult.status == ConsultStatus.ENDED.value,
                Consult.accepted_at.is_not(None),
                Consult.ended_at.is_not(None),
            )
            .order_by(Consult.ended_at.desc())
            .limit(RECENT)
        )
    ).all()
    lengths = []
    for accepted, live, ended in rows:
        began = live or accepted
        if began is not None and ended is not None and ended > began:
            lengths.append((ended - began).total_seconds())
    return round(statistics.median(lengths)) if lengths else TYPICAL_CONSULT_S


async def leave(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, visit_id: int
) -> None:
    """The person leaves the queue, or hangs up: the walk-in consult ends."""
    visit = await visits.open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    if visit.consult_id is None:
        raise NotFound(f"Visit {visit_id} is not in the queue.")
    status = await session.scalar(select(Consult.status).where(Consult.id == visit.consult_id))
    if status in [s.value for s in consults.OPEN]:
        await consults.end(
            session=session, caller=caller, audit=audit, bus=bus, consult_id=visit.consult_id
        )
