"""Check-in at a kiosk: finding a person again (or making their record), their visit, the
vitals measured in it with their triage flags, and the privacy reset that closes it.

A person identifies themself with a mobile or ID number and their date of birth. The
number is not stored: `KioskPerson.lookup` is an HMAC of it with the date of birth under
the deployment's secret key, so the same person is found again at the same corner, and a
copied database alone does not tell who they are. Their record is a patient of the
corner organisation (named only "Kiosk visitor"); no clinic sees it.

A kiosk holds one visit at a time: a check-in closes the previous visit of the device, and
the kiosk page closes it on every load (a reload is a reset), on "finish" and after the
inactivity countdown. Everything a kiosk may read is reached through its open visit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import Organisation
from server.audit.service import DENIED, FAILURE, Recorder
from server.consults import service as consults
from server.consults.models import Consult
from server.db import utcnow
from server.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from server.events.bus import EventBus
from server.identity import OrgKind, Principal, Role
from server.kiosk import triage
from server.kiosk.models import KioskPerson, KioskReading, KioskVisit
from server.patients.models import Patient

MAX_ID = 2**63 - 1
LANGUAGES = ("en", "zh")
PERSON_NAME = "Kiosk visitor"
"""What a corner's record of a person is called: they are known by their number only."""
_PHONE = re.compile(r"\+?[0-9]{6,15}")
_ID_NUMBER = re.compile(r"[0-9A-Z]{5,32}")
_SEPARATORS = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class Identity:
    """How a person identified themself: which kind of number, normalised."""

    kind: str
    """phone or id_number."""
    value: str
    birth_date: date


def identity(*, phone: str | None, id_number: str | None, birth_date: date) -> Identity:
    """The normalised identity of a check-in; InvalidInput naming the field otherwise."""
    if (phone is None) == (id_number is None):
        raise InvalidInput(
            "Give either a mobile number or an ID number.", details={"field": "phone"}
        )
    today = utcnow().date()
    if not date(1900, 1, 1) <= birth_date <= today:
        raise InvalidInput(
            "The date of birth must be a real date in the past.",
            details={"field": "birth_date"},
        )
    if phone is not None:
        value = _SEPARATORS.sub("", phone)
        if not _PHONE.fullmatch(value):
            raise InvalidInput("A mobile number has 6 to 15 digits.", details={"field": "phone"})
        return Identity("phone", value.lstrip("+"), birth_date)
    assert id_number is not None
    value = _SEPARATORS.sub("", id_number).upper()
    if not _ID_NUMBER.fullmatch(value):
        raise InvalidInput(
            "An ID number has 5 to 32 letters and digits.", details={"field": "id_number"}
        )
    return Identity("id_number", value, birth_date)


def lookup_key(secret: bytes, who: Identity) -> str:
    """The HMAC-SHA256 (hex) a person is found again by."""
    message = f"kiosk-person:{who.kind}:{who.value}:{who.birth_date.isoformat()}"
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _kiosk(caller: Principal) -> None:
    if caller.role is not Role.KIOSK:
        raise PermissionDenied("Only a kiosk checks people in.")
    if caller.org_kind is not OrgKind.CORNER:
        raise PermissionDenied("Check-in works at the kiosk of a medical corner.")


# Check-in and the end of a visit ------------------------------------------------------


async def check_in(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    bus: EventBus,
    secret: bytes,
    who: Identity,
    consent: bool,
    language: str,
) -> KioskVisit:
    """Start a visit for the person: their record found again, or made (with consent)."""
    _kiosk(caller)
    if consent is not True:
        raise InvalidInput(
            "Your consent is needed to keep your measurements.", details={"field": "consent"}
        )
    if language not in LANGUAGES:
        raise InvalidInput(
            f"The language is one of {', '.join(LANGUAGES)}.", details={"field": "language"}
        )
    await close_open(session=session, caller=caller, audit=audit, bus=bus, how="superseded")
    key = lookup_key(secret, who)
    now = utcnow()
    person = await session.scalar(
        select(KioskPerson).where(KioskPerson.org_id == caller.org_id, KioskPerson.lookup == key)
    )
    known = person is not None
    if person is None:
        record = Patient(
            org_id=caller.org_id,
            name=PERSON_NAME,
            birth_date=who.birth_date,
            sex="U",
            identifier=f"kiosk-{key[:24]}",
            created_by=caller.user_id,
            created_at=now,
        )
        session.add(record)
        await session.flush()
        person = KioskPerson(
            patient_id=record.id,
            org_id=caller.org_id,
            lookup=key,
            identified_by=who.kind,
            consented_at=now,
            created_at=now,
        )
        session.add(person)
    else:
        person.consented_at = now
    visit = KioskVisit(
        device_id=caller.user_id,
        org_id=caller.org_id,
        person_id=person.patient_id,
        known=known,
        language=language,
        started_at=now,
    )
    session.add(visit)
    await session.flush()
    await audit.record(
        session,
        action="kiosk.check_in",
        object_type="kiosk_visit",
        object_id=visit.id,
        details={"person": person.patient_id, "returning": known, "by": who.kind},
    )
    return visit


async def close_open(
    *, session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, how: str
) -> list[int]:
    """Close the device's open visit (ending its consult if one is open); the visits closed.

    how: finish, reset (the inactivity countdown, a reload of the kiosk page) or
    superseded (the next person checked in).
    """
    if caller.role is not Role.KIOSK:
        return []
    open_visits = list(
        await session.scalars(
            select(KioskVisit).where(
                KioskVisit.device_id == caller.user_id, KioskVisit.closed_at.is_(None)
            )
        )
    )
    closed = []
    for visit in open_visits:
        await _end_open_consults(session, caller, audit, bus, visit.person_id)
        won = await session.scalar(
            update(KioskVisit)
            .where(KioskVisit.id == visit.id, KioskVisit.closed_at.is_(None))
            .values(closed_at=utcnow(), closed_how=how)
            .returning(KioskVisit.id)
            .execution_options(synchronize_session=False)
        )
        if won is None:
            continue
        closed.append(visit.id)
        await audit.record(
            session,
            action="kiosk.visit.close",
            object_type="kiosk_visit",
            object_id=visit.id,
            details={"how": how},
        )
    return closed


async def _end_open_consults(
    session: AsyncSession, caller: Principal, audit: Recorder, bus: EventBus, person_id: int
) -> None:
    """End the person's open consults from this kiosk (while the visit still gives access)."""
    open_ids = list(
        await session.scalars(
            select(Consult.id).where(
                Consult.patient_id == person_id,
                Consult.requested_by == caller.user_id,
                Consult.status.in_([s.value for s in consults.OPEN]),
            )
        )
    )
    for consult_id in open_ids:
        try:
            await consults.end(
                session=session, caller=caller, audit=audit, bus=bus, consult_id=consult_id
            )
        except (NotFound, Conflict):
            continue  # it came to an end meanwhile


# The open visit -------------------------------------------------------------------------


async def open_visit(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    visit_id: int,
    action: str = "kiosk.visit.read",
) -> KioskVisit:
    """The caller's open visit; NotFound for any other, audited as `action` refused (denied
    for another kiosk's or a closed visit, failure for none at all)."""
    visit = None
    if 0 < visit_id <= MAX_ID:
        visit = await session.scalar(
            select(KioskVisit)
            .where(KioskVisit.id == visit_id)
            .execution_options(populate_existing=True)
        )
    if (
        visit is None
        or caller.role is not Role.KIOSK
        or visit.device_id != caller.user_id
        or visit.org_id != caller.org_id
        or visit.closed_at is not None
    ):
        audit.record_apart(
            session,
            action=action,
            outcome=FAILURE if visit is None else DENIED,
            object_type="kiosk_visit",
            object_id=visit_id,
        )
        raise NotFound(f"No open visit {visit_id} at this kiosk.")
    return visit


async def open_visit_id(*, session: AsyncSession, caller: Principal) -> int:
    """The id of the device's open visit (for a connected device's bridge); NotFound."""
    found = None
    if caller.role is Role.KIOSK:
        found = await session.scalar(
            select(KioskVisit.id).where(
                KioskVisit.device_id == caller.user_id, KioskVisit.closed_at.is_(None)
            )
        )
    if found is None:
        raise NotFound("Nobody is checked in at this kiosk now.")
    return found


async def language_of(*, session: AsyncSession, caller: Principal, visit_id: int) -> str:
    """The language the person chose for their open visit at this kiosk (en when none)."""
    found = await session.scalar(
        select(KioskVisit.language).where(
            KioskVisit.id == visit_id,
            KioskVisit.device_id == caller.user_id,
            KioskVisit.closed_at.is_(None),
        )
    )
    return found or "en"


# Vitals ---------------------------------------------------------------------------------

VITAL_FIELDS = tuple(f.name for f in fields(triage.Vitals))


def _of(reading: KioskReading) -> dict[str, Any]:
    return {name: getattr(reading, name) for name in VITAL_FIELDS}


async def readings(session: AsyncSession, visit_id: int) -> list[KioskReading]:
    """The visit's readings, in the order they were taken."""
    return list(
        await session.scalars(
            select(KioskReading)
            .where(KioskReading.visit_id == visit_id)
            .order_by(KioskReading.taken_at, KioskReading.id)
        )
    )


def merged(found: Sequence[KioskReading]) -> triage.Vitals:
    """The visit's vitals so far: the latest value of each measurement."""
    values: dict[str, Any] = {}
    for reading in found:
        values.update({k: v for k, v in _of(reading).items() if v is not None})
    return triage.Vitals(**values)


async def current(session: AsyncSession, visit_id: int) -> tuple[triage.Vitals, list[triage.Flag]]:
    """The visit's vitals so far and their triage flags."""
    vitals = merged(await readings(session, visit_id))
    return vitals, triage.flags(vitals)


async def record_vitals(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    visit_id: int,
    measured: triage.Vitals,
    source: str,
) -> tuple[triage.Vitals, list[triage.Flag]]:
    """Keep what was measured (typed, or posted by a device); the visit's vitals and flags.

    Implausible values are refused (triage.Implausible, naming the field) and nothing is
    kept of that post.
    """
    visit = await open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    if all(v is None for v in as_dict(measured).values()):
        raise InvalidInput("Send at least one measurement.", details={"field": "systolic"})
    so_far = await readings(session, visit.id)
    combined = merged([*so_far, _unsaved(measured)])
    triage.check(combined)
    found = triage.flags(combined)
    reading = KioskReading(
        visit_id=visit.id,
        person_id=visit.person_id,
        taken_at=utcnow(),
        flags=[{"code": f.code, "severity": f.severity} for f in found],
        rules_version=triage.RULES_VERSION,
        **as_dict(measured),
    )
    session.add(reading)
    await session.flush()
    await audit.record(
        session,
        action="kiosk.vitals",
        object_type="kiosk_visit",
        object_id=visit.id,
        details={
            "person": visit.person_id,
            "source": source,
            "measured": sorted(k for k, v in as_dict(measured).items() if v is not None),
            "flags": [f.code for f in found],
        },
    )
    return combined, found


def as_dict(vitals: triage.Vitals) -> dict[str, Any]:
    """The vitals by field name (None where not measured)."""
    return {name: getattr(vitals, name) for name in VITAL_FIELDS}


def _unsaved(vitals: triage.Vitals) -> KioskReading:
    return KioskReading(**as_dict(vitals))


# History --------------------------------------------------------------------------------

HISTORY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Visit:
    """One past or present visit's vitals, for the trend."""

    started_at: datetime
    vitals: triage.Vitals
    flags: tuple[str, ...]


async def history(
    *, session: AsyncSession, caller: Principal, audit: Recorder, person_id: int
) -> list[Visit]:
    """A person's vitals per visit, oldest first (the last HISTORY_LIMIT visits with any).

    The kiosk reads them while the person is checked in at it; a specialist, while they
    hold (or held) a consult on that person; the GPs of the clinic the person linked their
    record to. Anyone else: NotFound, audited as refused.
    """
    allowed = 0 < person_id <= MAX_ID and await _may_read_person(session, caller, person_id)
    if not allowed:
        audit.record_apart(
            session,
            action="kiosk.history.read",
            outcome=DENIED,
            object_type="patient",
            object_id=person_id,
        )
        raise NotFound(f"No person {person_id} you can see.")
    visits = list(
        await session.scalars(
            select(KioskVisit)
            .where(KioskVisit.person_id == person_id)
            .order_by(KioskVisit.started_at.desc(), KioskVisit.id.desc())
        )
    )
    out: list[Visit] = []
    for visit in visits:
        found = await readings(session, visit.id)
        if not found:
            continue
        vitals = merged(found)
        out.append(Visit(visit.started_at, vitals, tuple(f.code for f in triage.flags(vitals))))
        if len(out) == HISTORY_LIMIT:
            break
    out.reverse()
    audit.record_apart(
        session,
        action="kiosk.history.read",
        object_type="patient",
        object_id=person_id,
        details={"visits": len(out)},
    )
    return out


async def _may_read_person(session: AsyncSession, caller: Principal, person_id: int) -> bool:
    if caller.role is Role.KIOSK:
        found = await session.scalar(
            select(KioskVisit.id).where(
                KioskVisit.device_id == caller.user_id,
                KioskVisit.person_id == person_id,
                KioskVisit.closed_at.is_(None),
            )
        )
        return found is not None
    if caller.role is Role.GP:
        found = await session.scalar(
            select(KioskPerson.patient_id).where(
                KioskPerson.patient_id == person_id, KioskPerson.clinic_id == caller.org_id
            )
        )
        return found is not None
    if caller.role is Role.SPECIALIST:
        found = await session.scalar(
            select(Consult.id)
            .join(KioskPerson, KioskPerson.patient_id == Consult.patient_id)
            .where(
                Consult.patient_id == person_id,
                consults.visible_to(caller),
            )
            .limit(1)
        )
        return found is not None
    return False


# The person's own GP clinic -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clinic:
    """A GP clinic a person can link their record to."""

    id: int
    name: str


async def clinics(*, session: AsyncSession, caller: Principal) -> list[Clinic]:
    """The network's GP clinics, by name (what a person picks from at the kiosk)."""
    _kiosk(caller)
    rows = await session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.kind == OrgKind.CLINIC)
        .order_by(Organisation.name)
    )
    return [Clinic(org_id, name) for org_id, name in rows]


async def link_clinic(
    *,
    session: AsyncSession,
    caller: Principal,
    audit: Recorder,
    visit_id: int,
    clinic_id: int | None,
) -> Clinic | None:
    """The person links their record to their GP clinic (or unlinks it: None); audited.

    From then on that clinic's GPs see the person's kiosk visits and their vitals.
    """
    visit = await open_visit(session=session, caller=caller, audit=audit, visit_id=visit_id)
    clinic = None
    if clinic_id is not None:
        found = await session.scalar(
            select(Organisation).where(
                Organisation.id == clinic_id, Organisation.kind == OrgKind.CLINIC
            )
        )
        if found is None:
            raise InvalidInput(f"No GP clinic {clinic_id}.", details={"field": "clinic_id"})
        clinic = Clinic(found.id, found.name)
    person = await session.get(KioskPerson, visit.person_id)
    assert person is not None
    person.clinic_id = clinic.id if clinic else None
    await session.flush()
    await audit.record(
        session,
        action="kiosk.link" if clinic else "kiosk.unlink",
        object_type="patient",
        object_id=visit.person_id,
        details={"clinic": clinic.id if clinic else None, "visit": visit.id},
    )
    return clinic


@dataclass(frozen=True, slots=True)
class LinkedVisit:
    """A kiosk visit of a person who linked their record to the caller's clinic."""

    visit_id: int
    person_id: int
    birth_date: date
    corner: str
    started_at: datetime
    vitals: triage.Vitals
    flags: tuple[triage.Flag, ...]


async def clinic_visits(
    *, session: AsyncSession, caller: Principal, audit: Recorder, limit: int = 50
) -> list[LinkedVisit]:
    """A GP's view: the latest kiosk visits (with vitals) of people linked to their clinic."""
    if caller.role is not Role.GP:
        raise PermissionDenied("The kiosk visits of linked people are for their clinic's GPs.")
    rows = (
        await session.execute(
            select(KioskVisit, Patient.birth_date, Organisation.name)
            .join(KioskPerson, KioskPerson.patient_id == KioskVisit.person_id)
            .join(Patient, Patient.id == KioskVisit.person_id)
            .join(Organisation, Organisation.id == KioskVisit.org_id)
            .where(KioskPerson.clinic_id == caller.org_id)
            .order_by(KioskVisit.started_at.desc(), KioskVisit.id.desc())
            .limit(limit)
        )
    ).all()
    out = []
    for visit, birth_date, corner in rows:
        vitals, found = await current(session, visit.id)
        out.append(
            LinkedVisit(
                visit.id,
                visit.person_id,
                birth_date,
                corner,
                visit.started_at,
                vitals,
                tuple(found),
            )
        )
    audit.record_apart(
        session,
        action="kiosk.clinic_visits.read",
        object_type="kiosk_visit",
        object_id=",".join(str(v.visit_id) for v in out)[:128],
        details={"results": len(out)},
    )
    return out
