"""Seeded demonstration data for `doorstep demo`: the network, its patients and studies.

The studies (per clinic, a 12-lead ECG and a CT study of demo patients) are stored
through the Archive, so they are validated, indexed, audited and linked like uploads.
"""

from __future__ import annotations

import asyncio
import copy
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import db
from server.accounts import passwords
from server.accounts import service as accounts
from server.accounts.models import Organisation, User
from server.archive.archive import Archive
from server.archive.lifetime import blob_root
from server.archive.models import Study
from server.archive.storage import LocalBlobStorage
from server.audit.service import Recorder
from server.consults.models import Duty
from server.events.memory import InProcessEventBus
from server.identity import Actor, OrgKind, Principal, Role
from server.kiosk import enrolment, triage, visits
from server.kiosk.models import KioskReading, KioskVisit
from server.patients.models import Patient
from server.reading import service as reading
from server.reading.models import Priority
from server.reports import service as reports
from server.reports.lifetime import authority_directory
from server.reports.signing import Signing
from server.settings import Settings

DEMO_PASSWORD = "doorstep-demo"  # noqa: S105  (printed for demo users)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A seeded account, as printed for the person trying the demo."""

    username: str
    role: Role
    organisation: str


_ORGS = (
    ("St Luke's Hospital", OrgKind.HOSPITAL, "STLUKES"),
    ("Riverside Clinic", OrgKind.CLINIC, "RIVERSIDE"),
    ("Hilltop Clinic", OrgKind.CLINIC, "HILLTOP"),
    ("Harbour Office Corner", OrgKind.CORNER, None),
)
_USERS = (
    ("admin", "Ada Admin", "St Luke's Hospital", Role.ADMIN, ()),
    ("dr.heart", "Dr Hana Heart", "St Luke's Hospital", Role.SPECIALIST, ("cardiology",)),
    ("dr.ray", "Dr Ravi Ray", "St Luke's Hospital", Role.SPECIALIST, ("radiology",)),
    ("dr.skin", "Dr Sara Skin", "St Luke's Hospital", Role.SPECIALIST, ("dermatology", "general")),
    ("gp.river", "Dr Gita River", "Riverside Clinic", Role.GP, ()),
    ("gp.hill", "Dr Hugo Hill", "Hilltop Clinic", Role.GP, ()),
    ("kiosk.harbour", "Harbour kiosk", "Harbour Office Corner", Role.KIOSK, ()),
)
_PATIENTS = (
    ("Riverside Clinic", "Okafor^Grace", date(1956, 3, 14), "F", "RC-0001"),
    ("Riverside Clinic", "Lindqvist^Erik", date(1971, 11, 2), "M", "RC-0002"),
    ("Riverside Clinic", "Nakamura^Aiko", date(1988, 6, 30), "F", "RC-0003"),
    ("Hilltop Clinic", "Moreau^Louis", date(1949, 1, 21), "M", "HC-0001"),
    ("Hilltop Clinic", "Santos^Maria", date(1963, 9, 8), "F", "HC-0002"),
)


@dataclass(frozen=True, slots=True)
class Demo:
    """What `doorstep demo` found: whether it seeded now, and the demo logins that work."""

    seeded: bool
    logins: list[DemoLogin]


async def _working_logins(session: AsyncSession) -> list[DemoLogin]:
    """The demo's own accounts that still exist as seeded, are active and take its password."""
    found = {
        user.username: user
        for user in await session.scalars(
            select(User).where(User.username.in_([u[0] for u in _USERS]))
        )
    }
    logins = []
    for username, _, org_name, role, _ in _USERS:
        user = found.get(username)
        if (
            user is not None
            and user.is_active
            and user.role == role
            and user.organisation.name == org_name
            and await passwords.verify_password(user.password_hash, DEMO_PASSWORD)
        ):
            logins.append(DemoLogin(username, role, org_name))
    return logins


async def seed(*, session: AsyncSession, audit: Recorder) -> Demo:
    """Create the demo network in an empty database; either way, the demo logins that work.

    A database that already holds organisations is left as it is; the logins are then
    those of the demo's own users that are still there (none in a database of other data).
    """
    if await session.scalar(select(func.count()).select_from(Organisation)):
        return Demo(seeded=False, logins=await _working_logins(session))
    orgs = {
        name: await accounts.add_org(session=session, name=name, kind=kind, ae_title=ae)
        for name, kind, ae in _ORGS
    }
    logins = []
    for username, display, org_name, role, specialties in _USERS:
        await accounts.add_user(
            session=session,
            username=username,
            display_name=display,
            org=orgs[org_name],
            role=role,
            password=DEMO_PASSWORD,
            specialties=specialties,
        )
        logins.append(DemoLogin(username, role, org_name))
    for org_name, name, birth_date, sex, identifier in _PATIENTS:
        session.add(
            Patient(
                org_id=orgs[org_name].id,
                name=name,
                birth_date=birth_date,
                sex=sex,
                identifier=identifier,
            )
        )
    await session.flush()
    for user in await session.scalars(select(User).where(User.role == Role.SPECIALIST)):
        session.add(Duty(user_id=user.id, on_duty=True))  # every demo specialist is on duty
    await audit.record(session, action="demo.seed")
    return Demo(seeded=True, logins=logins)


# --- Demo studies: per clinic, an ECG and an image study of its demo patients ---------------

_DEMO_UIDS = uuid.UUID("6d6f6465-6d6f-4f72-8b65-646f6f727374")
_STACK_SLICES = 16
_STUDIES = (
    # clinic, the ECG's patient, the image study's patient
    ("Riverside Clinic", "RC-0001", "RC-0002"),
    ("Hilltop Clinic", "HC-0001", "HC-0002"),
)


def _uid(*parts: str) -> str:
    """A demo UID derived from names (PS3.5 B.2, 2.25 + a UUID): the same on every start."""
    return f"2.25.{uuid.uuid5(_DEMO_UIDS, '/'.join(parts)).int}"


def _bundled(name: str) -> Dataset:
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"pydicom's bundled {name} is not installed")
    return dcmread(path)


def _as_patient(ds: Dataset, patient: Patient) -> None:
    ds.PatientName = patient.name
    ds.PatientID = patient.identifier
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = patient.sex


def _part10(ds: Dataset, sop_uid: str) -> bytes:
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def demo_ecg(clinic: str, patient: Patient) -> bytes:
    """pydicom's 12-lead ECG (with the device's own measurements) as the patient's, new UIDs."""
    ds = _bundled("waveform_ecg.dcm")
    _as_patient(ds, patient)
    ds.StudyInstanceUID = _uid(clinic, "ecg")
    ds.SeriesInstanceUID = _uid(clinic, "ecg", "series")
    ds.StudyDescription = "Resting 12-lead ECG"
    ds.AccessionNumber = ""
    return _part10(ds, _uid(clinic, "ecg", "instance"))


def _one(make: Callable[[str, Patient], bytes], clinic: str, patient: Patient) -> list[bytes]:
    return [make(clinic, patient)]


def _phantom_slice(index: int, size: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Hounsfield units of one axial slice of a simple chest phantom (body, lungs, spine, a
    nodule that grows and shrinks through the stack), so scrolling the slices shows change."""
    y, x = np.mgrid[0:size, 0:size] / (size / 2) - 1.0
    depth = (index + 0.5) / _STACK_SLICES * 2 - 1.0  # -1 .. 1 through the stack
    hu = np.full((size, size), -1000.0)  # air
    hu[(x / 0.9) ** 2 + (y / 0.7) ** 2 <= 1 - 0.3 * depth**2] = 40.0  # soft tissue
    lung = 0.32 * (1 - depth**2) ** 0.5
    for side in (-0.42, 0.42):
        hu[((x - side) / (lung + 0.05)) ** 2 + ((y + 0.05) / (lung + 0.15)) ** 2 <= 1] = -820.0
    hu[x**2 + (y - 0.45) ** 2 <= 0.12**2] = 700.0  # vertebra
    nodule = 0.1 * max(0.0, 1 - ((depth - 0.2) / 0.45) ** 2) ** 0.5
    if nodule > 0:
        hu[(x - 0.35) ** 2 + (y + 0.1) ** 2 <= nodule**2] = 60.0
    return (hu + 1024).astype(np.int16)  # stored values, Rescale Intercept -1024


def demo_images(clinic: str, patient: Patient) -> list[bytes]:
    """A CT study of the patient: a 16-slice stack (a phantom in CT_small's attributes) and
    pydicom's CT_small itself as a second series; new UIDs."""
    study_uid = _uid(clinic, "ct")
    base = _bundled("CT_small.dcm")
    x, y, z = (float(v) for v in base.ImagePositionPatient)

    def instance(series: str, number: int, index: int) -> Dataset:
        ds = copy.deepcopy(base)
        _as_patient(ds, patient)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = _uid(clinic, "ct", series)
        ds.SeriesNumber = number
        ds.StudyDescription = "CT chest"
        ds.InstanceNumber = index + 1
        return ds

    instances = []
    for index in range(_STACK_SLICES):
        ds = instance("stack", 1, index)
        ds.SeriesDescription = "Chest phantom, axial stack"
        ds.ImagePositionPatient = [x, y, round(z - 5.0 * index, 2)]
        ds.SliceLocation = round(z - 5.0 * index, 2)
        ds.WindowCenter, ds.WindowWidth = -600, 1600
        ds.PixelData = _phantom_slice(index, int(base.Rows)).tobytes()
        instances.append(_part10(ds, _uid(clinic, "ct", "stack", str(index))))
    instances.append(_part10(instance("original", 2, 0), _uid(clinic, "ct", "original", "1")))
    return instances


async def store_studies(*, archive: Archive, audit: Recorder) -> list[str]:
    """Store each demo clinic's ECG and CT study unless it is there: the study UIDs stored now.

    The studies carry the demo patients' identifiers, so storing links them to the
    patients; clinics or patients that are not the demo's own get nothing.
    """
    stored: list[str] = []
    for clinic, ecg_patient, image_patient in _STUDIES:
        async with archive.session_maker() as session:
            org = await session.scalar(select(Organisation).where(Organisation.name == clinic))
            if org is None:
                continue
            patients = {
                p.identifier: p
                for p in await session.scalars(select(Patient).where(Patient.org_id == org.id))
            }
            present = set(
                await session.scalars(
                    select(Study.study_uid).where(
                        Study.study_uid.in_([_uid(clinic, "ecg"), _uid(clinic, "ct")])
                    )
                )
            )
        wanted: list[Callable[[], list[bytes]]] = []
        if ecg_patient in patients and _uid(clinic, "ecg") not in present:
            wanted.append(partial(_one, demo_ecg, clinic, patients[ecg_patient]))
        if image_patient in patients and _uid(clinic, "ct") not in present:
            wanted.append(partial(demo_images, clinic, patients[image_patient]))
        for make in wanted:
            items = await asyncio.to_thread(make)
            results = await archive.store(audit=audit, org_id=org.id, items=items, source="demo")
            stored += sorted({r.study_uid for r in results if r.ok and r.study_uid})
    return stored


async def seed_studies(settings: Settings, audit: Recorder) -> list[str]:
    """`doorstep demo`'s studies, stored through an Archive of its own before the server runs."""
    engine = db.create_engine(settings)
    sessions = db.create_sessionmaker(engine)
    write_group = db.WriteGroup(sessions)
    storage = LocalBlobStorage(blob_root(settings.data_dir))
    await asyncio.to_thread(storage.start)
    try:
        archive = Archive.configured(
            settings, session_maker=sessions, write_group=write_group, storage=storage
        )
        stored = await store_studies(archive=archive, audit=audit)
        if _uid("Riverside Clinic", "ecg") in stored and _uid("Hilltop Clinic", "ecg") in stored:
            await seed_readings(archive=archive, audit=audit, settings=settings)
        return stored
    finally:
        await write_group.close()
        await asyncio.to_thread(storage.close)
        await engine.dispose()


# --- Demo readings: two requests waiting, one report signed ---------------------------------

_READINGS = (
    # clinic, study, specialty, priority, question
    (
        "Riverside Clinic",
        "ecg",
        "cardiology",
        Priority.STAT,
        "Chest pain since this morning. ST changes?",
    ),
    ("Riverside Clinic", "ct", "radiology", Priority.ROUTINE, "Persistent cough for six weeks."),
    ("Hilltop Clinic", "ecg", "cardiology", Priority.URGENT, "Palpitations; ECG before surgery."),
)
_SIGNED_FINDINGS = (
    "Sinus rhythm at 61 bpm. PR 152 ms, QRS 99 ms, QT/QTc 399/402 ms. "
    "Axis 49 degrees. No ST elevation or depression."
)
_SIGNED_MEASUREMENTS = {
    "heart_rate_bpm": 61.1,
    "pr_ms": 152,
    "qrs_ms": 99,
    "qt_ms": 399,
    "qtc_ms": 402.5,
    "axis_deg": 49.1,
    "rhythm": "sinus rhythm",
}


async def _principal(session: AsyncSession, username: str) -> Principal:
    user = await session.scalar(select(User).where(User.username == username))
    assert user is not None
    return Principal.of(user, via="demo")


def _as(audit: Recorder, caller: Principal) -> Recorder:
    return audit.acting_as(Actor(caller.user_id, caller.username, caller.org_id))


async def seed_readings(*, archive: Archive, audit: Recorder, settings: Settings) -> None:
    """Ask for the demo readings; dr.heart reads and signs Hilltop's ECG (the first start only)."""
    bus = InProcessEventBus()
    await bus.start()
    policy = reading.Policy.of(settings)
    signing = Signing(
        directory=authority_directory(settings.data_dir), secret=settings.resolved_secret_key()
    )
    try:
        async with db.transaction(archive.session_maker) as session:
            gps = {
                "Riverside Clinic": await _principal(session, "gp.river"),
                "Hilltop Clinic": await _principal(session, "gp.hill"),
            }
            asked = []
            for clinic, study, specialty, priority, question in _READINGS:
                gp = gps[clinic]
                asked.append(
                    await reading.create(
                        session=session,
                        caller=gp,
                        audit=_as(audit, gp),
                        bus=bus,
                        policy=policy,
                        study_uid=_uid(clinic, study),
                        specialty=specialty,
                        priority=priority,
                        question=question,
                    )
                )
            heart = await _principal(session, "dr.heart")
            request_id = asked[-1].request.id
            await reading.claim(
                session=session,
                caller=heart,
                audit=_as(audit, heart),
                bus=bus,
                policy=policy,
                request_id=request_id,
            )
            await reading.save_draft(
                session=session,
                caller=heart,
                policy=policy,
                request_id=request_id,
                findings=_SIGNED_FINDINGS,
                impression="Normal ECG.",
                measurements=dict(_SIGNED_MEASUREMENTS),
            )
            signed = await reports.sign(
                session=session,
                caller=heart,
                audit=_as(audit, heart),
                bus=bus,
                signing=signing,
                request_id=request_id,
            )
        await reports.file_in_study(
            archive=archive,
            sessions=archive.session_maker,
            audit=_as(audit, heart),
            report_id=signed.report.id,
        )
    finally:
        await bus.close()


# --- The demo corner: a returning person with a few past visits (for the BP trend) -----------

KIOSK_PERSON_PHONE = "13800138000"
KIOSK_PERSON_BIRTH = date(1951, 5, 20)
_KIOSK_VISITS = (
    # days ago, systolic, diastolic, heart rate
    (120, 158, 96, 84),
    (90, 151, 93, 80),
    (60, 146, 90, 78),
    (30, 141, 88, 76),
    (7, 137, 86, 74),
)


async def seed_kiosk_person(*, session: AsyncSession, audit: Recorder, secret: bytes) -> None:
    """Check the demo person in at the Harbour kiosk on a few past days, improving slowly."""
    kiosk = await _principal(session, "kiosk.harbour")
    as_kiosk = _as(audit, kiosk)
    who = visits.identity(phone=KIOSK_PERSON_PHONE, id_number=None, birth_date=KIOSK_PERSON_BIRTH)
    bus = InProcessEventBus()
    now = db.utcnow()
    for days_ago, systolic, diastolic, heart_rate in _KIOSK_VISITS:
        visit = await visits.check_in(
            session=session,
            caller=kiosk,
            audit=as_kiosk,
            bus=bus,
            secret=secret,
            who=who,
            consent=True,
            language="zh",
        )
        await visits.record_vitals(
            session=session,
            caller=kiosk,
            audit=as_kiosk,
            visit_id=visit.id,
            measured=triage.Vitals(systolic=systolic, diastolic=diastolic, heart_rate=heart_rate),
            source="typed",
        )
        await visits.close_open(
            session=session, caller=kiosk, audit=as_kiosk, bus=bus, how="finish"
        )
        then = now - timedelta(days=days_ago)
        await session.execute(
            update(KioskVisit)
            .where(KioskVisit.id == visit.id)
            .values(started_at=then, closed_at=then + timedelta(minutes=4))
        )
        await session.execute(
            update(KioskReading)
            .where(KioskReading.visit_id == visit.id)
            .values(taken_at=then + timedelta(minutes=2))
        )


DEMO_ENROLMENT = timedelta(hours=12)
"""How long the enrolment link printed by `doorstep demo` works (one use)."""


async def kiosk_enrolment(*, session: AsyncSession, audit: Recorder) -> str | None:
    """A fresh one-time enrolment code for the Harbour kiosk (None when it is not there)."""
    admin = await session.scalar(select(User).where(User.username == "admin"))
    device = await session.scalar(select(User).where(User.username == "kiosk.harbour"))
    if admin is None or device is None or not (admin.is_active and device.is_active):
        return None
    caller = Principal.of(admin, via="demo")
    code, _ = await enrolment.create_code(
        session=session,
        audit=_as(audit, caller),
        caller=caller,
        device="kiosk.harbour",
        lifetime=DEMO_ENROLMENT,
    )
    return code
