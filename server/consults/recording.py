"""Consented recording of a consult's call: the doctors' consent, who records, the file.

Recording needs both doctors' consent: the GP's (which records the patient's consent
too) and the accepted specialist's. The consent that completes the pair while the call is
live takes the recording on for the server process that received it: one conditional
UPDATE sets `started_at`, so exactly one process (and one request) wins, on SQLite and
PostgreSQL alike. That process runs the recorder (`recording_peer`). Withdrawing a
consent stops the recording wherever it runs: the stop is published on the bus channel
`recording:{consult id}`, which the recording process listens to.

The file is `recordings/consult-<id>.webm` below the data directory, named from the
consult id only. It is given to the consult's members once the consult has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import User
from server.audit.service import Recorder
from server.consults import service
from server.consults.models import CALLABLE, ConsultRecording, ConsultStatus
from server.db import after_commit, utcnow
from server.errors import Conflict, InvalidInput, PermissionDenied
from server.events.bus import EventBus
from server.identity import Principal, Role

RECORDINGS = "recordings"
"""The recordings' folder below the data directory."""
FINISH_GRACE = timedelta(minutes=2)
"""How long after the end a recording may still be being finished; later, it was lost."""


def channel(consult_id: int) -> str:
    """The bus channel on which the recording process hears that a consent was withdrawn."""
    return f"recording:{consult_id}"


def media_path(consult_id: int) -> str:
    """The recording's file, relative to the data directory (from the consult id only)."""
    return f"{RECORDINGS}/consult-{int(consult_id)}.webm"


def work_folder(data_dir: Path, consult_id: int) -> Path:
    """Where the recorder writes one part per track while it records."""
    return data_dir / RECORDINGS / f"consult-{int(consult_id)}.parts"


@dataclass(frozen=True, slots=True)
class Consent:
    """One doctor's consent: who and when."""

    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class State:
    """Where a consult's recording stands."""

    consult_id: int
    gp_consent: Consent | None
    patient_consent: bool
    specialist_consent: Consent | None
    started_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None
    duration_seconds: float | None
    tracks: list[str]
    available: bool

    @property
    def recording(self) -> bool:
        """True while the call is being recorded."""
        return self.started_at is not None and self.stopped_at is None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A consent's result: the state, and whether this request took the recording on."""

    state: State
    start: bool
    org_id: int


async def _state(session: AsyncSession, view: service.View) -> State:
    row = await session.get(ConsultRecording, view.consult.id, populate_existing=True)
    if row is None:
        return State(view.consult.id, None, False, None, None, None, None, None, [], False)
    ids = [u for u in (row.gp_consent_by, row.specialist_consent_by) if u is not None]
    names = dict(
        (await session.execute(select(User.id, User.username).where(User.id.in_(ids)))).all()
    )

    def consent(by: int | None, at: datetime | None) -> Consent | None:
        return Consent(names.get(by, ""), at) if by is not None and at is not None else None

    return State(
        consult_id=view.consult.id,
        gp_consent=consent(row.gp_consent_by, row.gp_consent_at),
        patient_consent=row.patient_consent,
        specialist_consent=consent(row.specialist_consent_by, row.specialist_consent_at),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        stop_reason=row.stop_reason,
        duration_seconds=row.duration_seconds,
        tracks=list(row.tracks or []),
        available=row.media_path is not None and view.consult.status == ConsultStatus.ENDED,
    )


async def state(*, session: AsyncSession, caller: Principal, consult_id: int) -> State:
    """The recording state of a consult the caller is a member of (NotFound otherwise)."""
    view = await service.member(session=session, caller=caller, consult_id=consult_id)
    return await _state(session, view)


def _doctor(view: service.View, caller: Principal) -> str:
    """'gp' or 'specialist': whose consent the caller gives."""
    if caller.role is Role.GP:
        return "gp"
    if view.consult.specialist_id != caller.user_id:
        raise PermissionDenied("Only the specialist who took the consult consents for their side.")
    return "specialist"


async def consent(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    consult_id: int,
    consent: bool,
    patient_consent: bool | None,
) -> Outcome:
    """Give (or withdraw) the caller's consent to recording the call.

    The GP's consent records the patient's (`patient_consent` true or left out; false is
    refused). The consent that completes the pair while the call is live takes the
    recording on (`Outcome.start`); a consent given while the consult is only accepted is
    kept, and sending it again once the call is live starts the recording. Withdrawing
    stops a recording that runs.
    """
    view = await service.member(session=session, caller=caller, consult_id=consult_id)
    side = _doctor(view, caller)
    if consent and side == "gp" and patient_consent is False:
        raise InvalidInput(
            "Recording needs the patient's consent.", details={"field": "patient_consent"}
        )
    row = await session.get(
        ConsultRecording, consult_id, with_for_update=True, populate_existing=True
    )
    if consent:
        if view.consult.status not in CALLABLE:
            raise Conflict(
                f"Consult {consult_id} is {view.consult.status}: only a call can be recorded.",
                details={"status": view.consult.status},
            )
        if row is not None and row.stopped_at is not None:
            raise Conflict(
                f"The call of consult {consult_id} was recorded already (one recording each).",
                details={"stopped_at": row.stopped_at.isoformat()},
            )
    if row is None:
        row = await _new_row(session, consult_id)
    now = utcnow()
    if side == "gp":
        row.gp_consent_by = caller.user_id if consent else None
        row.gp_consent_at = now if consent else None
        row.patient_consent = consent
    else:
        row.specialist_consent_by = caller.user_id if consent else None
        row.specialist_consent_at = now if consent else None
    await session.flush()
    details: dict[str, Any] = {"side": side}
    if side == "gp":
        details["patient_consent"] = consent
    await audit.record(
        session,
        action="consult.recording.consent" if consent else "consult.recording.withdraw",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
        details=details,
    )
    start = False
    if consent and view.consult.status == ConsultStatus.LIVE:
        start = await _claim(session, consult_id, now)
        if start:
            await audit.record(
                session,
                action="consult.recording.start",
                object_type="consult",
                object_id=consult_id,
                org_id=view.consult.org_id,
            )
    elif not consent and row.started_at is not None and row.stopped_at is None:

        async def stop() -> None:
            await bus.publish(channel(consult_id), {"type": "stop", "reason": "withdrawn"})

        after_commit(session, stop)
    return Outcome(await _state(session, view), start, view.consult.org_id)


async def _new_row(session: AsyncSession, consult_id: int) -> ConsultRecording:
    """The consult's row, created now (or by the other doctor's consent a moment ago)."""
    try:
        async with session.begin_nested():
            row = ConsultRecording(consult_id=consult_id, patient_consent=False)
            session.add(row)
            await session.flush()
            return row
    except IntegrityError:
        found = await session.get(
            ConsultRecording, consult_id, with_for_update=True, populate_existing=True
        )
        assert found is not None
        return found


async def _claim(session: AsyncSession, consult_id: int, now: datetime) -> bool:
    """Take the recording on: True for the one request whose UPDATE set started_at."""
    won = await session.scalar(
        update(ConsultRecording)
        .where(
            ConsultRecording.consult_id == consult_id,
            ConsultRecording.started_at.is_(None),
            ConsultRecording.gp_consent_by.is_not(None),
            ConsultRecording.patient_consent.is_(True),
            ConsultRecording.specialist_consent_by.is_not(None),
        )
        .values(started_at=now)
        .returning(ConsultRecording.consult_id)
        .execution_options(synchronize_session=False)
    )
    return won is not None


async def finished(
    *,
    session: AsyncSession,
    audit: Recorder,
    consult_id: int,
    org_id: int,
    reason: str,
    media: dict[str, Any] | None,
) -> None:
    """The recorder stopped: fill the row with the file's figures (or none), audited."""
    values: dict[str, Any] = {"stopped_at": utcnow(), "stop_reason": reason}
    if media is not None:
        values |= {
            "media_path": media_path(consult_id),
            "duration_seconds": media["duration_seconds"],
            "tracks": media["tracks"],
            "size": media["size"],
            "sha256": media["sha256"],
        }
    await session.execute(
        update(ConsultRecording)
        .where(ConsultRecording.consult_id == consult_id, ConsultRecording.stopped_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await audit.record(
        session,
        action="consult.recording.stop",
        object_type="consult",
        object_id=consult_id,
        org_id=org_id,
        details={"reason": reason, **({"seconds": media["duration_seconds"]} if media else {})},
    )


@dataclass(frozen=True, slots=True)
class File:
    """A recording to send: its path relative to the data directory and its size."""

    media_path: str
    size: int
    sha256: str


async def viewed(
    *, session: AsyncSession, caller: Principal, audit: Recorder, consult_id: int
) -> File:
    """The recording of an ended consult, for its members (NotFound for others), audited.

    Conflict while the consult has not ended, while the file is being finished, or when
    nothing was recorded.
    """
    view = await service.member(session=session, caller=caller, consult_id=consult_id)
    row = await session.get(ConsultRecording, consult_id)
    if view.consult.status != ConsultStatus.ENDED:
        raise Conflict(
            f"Consult {consult_id} is {view.consult.status}: its recording is given once it ended.",
            details={"status": view.consult.status},
        )
    if row is None or row.started_at is None:
        raise Conflict(
            f"Nothing of consult {consult_id} was recorded.", details={"recorded": False}
        )
    if row.media_path is None or row.size is None or row.sha256 is None:
        ended_at = view.consult.ended_at
        lost = ended_at is not None and utcnow() - ended_at > FINISH_GRACE
        if row.stopped_at is None and lost:
            raise Conflict(
                f"The recording of consult {consult_id} was lost: the server process that "
                "recorded it stopped before it finished the file.",
                details={"recorded": False, "lost": True},
            )
        if row.stopped_at is None:
            raise Conflict(
                "The recording is being finished; try again in a few seconds.",
                details={"recorded": True, "finishing": True},
            )
        raise Conflict(
            f"Nothing of consult {consult_id} was recorded (nobody's media arrived).",
            details={"recorded": False},
        )
    audit.record_apart(
        session,
        action="consult.recording.view",
        object_type="consult",
        object_id=consult_id,
        org_id=view.consult.org_id,
    )
    return File(row.media_path, row.size, row.sha256)
