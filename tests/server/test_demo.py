"""`doorstep demo`: the seeded network, and the logins it prints on every start."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from server import db, demo
from server.accounts.models import Organisation, User
from server.app import create_app
from server.archive.lifetime import blob_root
from server.archive.models import Instance, Series, Study
from server.audit.models import AuditEvent
from server.audit.service import AuditLog
from server.consults.models import Duty
from server.identity import Actor
from server.patients.models import Patient
from server.reading.models import ReadingRequest
from server.reports.models import SignedReport
from server.reports.verification import verify_report_pdf
from server.settings import Settings
from tests.support import World, free_port

SEEDER = AuditLog(b"k" * 32).recorder(Actor(user_id=None, username="cli", org_id=None))
ALL = [username for username, *_ in demo._USERS]


async def test_seed_returns_the_demo_logins_on_every_start_while_they_work(
    tmp_path: Path,
) -> None:
    engine = db.create_engine(Settings(data_dir=tmp_path, secret_key="s" * 32))
    sessions = db.create_sessionmaker(engine)
    try:
        await db.upgrade(engine)
        async with db.transaction(sessions) as session:
            first = await demo.seed(session=session, audit=SEEDER)
        assert first.seeded
        assert [x.username for x in first.logins] == ALL
        async with db.transaction(sessions) as session:
            again = await demo.seed(session=session, audit=SEEDER)
        assert not again.seeded
        assert again.logins == first.logins
        async with db.transaction(sessions) as session:
            await session.execute(
                update(User).where(User.username == "dr.ray").values(is_active=False)
            )
            await session.execute(
                update(User).where(User.username == "gp.hill").values(password_hash=None)
            )
        async with db.transaction(sessions) as session:
            later = await demo.seed(session=session, audit=SEEDER)
        assert [x.username for x in later.logins] == [
            u for u in ALL if u not in ("dr.ray", "gp.hill")
        ]
    finally:
        await engine.dispose()


async def test_seed_leaves_a_database_of_other_data_alone(settings: Settings, world: World) -> None:
    engine = db.create_engine(settings)
    try:
        async with db.transaction(db.create_sessionmaker(engine)) as session:
            found = await demo.seed(session=session, audit=SEEDER)
    finally:
        await engine.dispose()
    assert found == demo.Demo(seeded=False, logins=[])


def _banner(data_dir: Path) -> str:
    """Start `doorstep demo`, return what it prints once it listens, and stop it."""
    env = {**os.environ, "DOORSTEP_DATA_DIR": str(data_dir), "DOORSTEP_SECRET_KEY": "s" * 32}
    port = str(free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--port", port, "--dicom-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("At the kiosk") or line.startswith("("):
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return "".join(lines)


def test_demo_prints_the_logins_on_every_start(tmp_path: Path) -> None:
    for _ in range(2):
        printed = _banner(tmp_path / "data")
        assert "Sign in with any of these (password: doorstep-demo)" in printed, printed
        assert "  gp.river" in printed
        assert re.search(r"/kiosk\?enrol=[0-9]{4}-[0-9]{4}-[0-9]{4}\n", printed), printed
        assert "a returning person: mobile 13800138000, born 1951-05-20" in printed


async def _studies(settings: Settings) -> list[tuple[str, str, str | None, str, int, str]]:
    """(clinic, study description, linked patient's identifier, modality, instances, source)."""
    engine = db.create_engine(settings)
    try:
        async with db.create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Organisation.name, Study, Patient.identifier)
                .join(Organisation, Organisation.id == Study.org_id)
                .outerjoin(Patient, Patient.id == Study.linked_patient_id)
                .order_by(Organisation.name, Study.study_description)
            )
            found = []
            for clinic, study, identifier in rows:
                instances = list(
                    await session.scalars(select(Instance).where(Instance.study_id == study.id))
                )
                modalities = await session.scalars(
                    select(Series.modality).where(Series.study_id == study.id).distinct()
                )
                found.append(
                    (
                        clinic,
                        study.study_description or "",
                        identifier,
                        "/".join(sorted(m or "" for m in modalities)),
                        len(instances),
                        ",".join(sorted({i.source for i in instances})),
                    )
                )
            return found
    finally:
        await engine.dispose()


async def test_seeded_studies_are_stored_linked_and_audited_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 32)
    engine = db.create_engine(settings)
    try:
        await db.upgrade(engine)
        async with db.transaction(db.create_sessionmaker(engine)) as session:
            await demo.seed(session=session, audit=SEEDER)
    finally:
        await engine.dispose()
    stored = await demo.seed_studies(settings, SEEDER)
    assert len(stored) == 4
    expected = [
        ("Hilltop Clinic", "CT chest", "HC-0002", "CT", 17, "demo"),
        # read and signed in the demo: its report filed back as Encapsulated PDF and SR
        ("Hilltop Clinic", "Resting 12-lead ECG", "HC-0001", "DOC/ECG/SR", 3, "demo,report"),
        ("Riverside Clinic", "CT chest", "RC-0002", "CT", 17, "demo"),
        ("Riverside Clinic", "Resting 12-lead ECG", "RC-0001", "ECG", 1, "demo"),
    ]
    assert await _studies(settings) == expected
    blobs = sorted(p for p in blob_root(tmp_path).rglob("*") if p.is_file() and p.suffix != ".lock")
    assert len(blobs) == 38
    # Idempotent: a second start stores nothing and writes no audit event of storing.
    assert await demo.seed_studies(settings, SEEDER) == []
    assert await _studies(settings) == expected

    assert len(await _events(settings, "dicom.store")) == 5
    assert len(await _events(settings, "study.patient_link")) == 4


async def test_seeded_readings_wait_and_one_report_is_signed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 32)
    engine = db.create_engine(settings)
    try:
        await db.upgrade(engine)
        async with db.transaction(db.create_sessionmaker(engine)) as session:
            await demo.seed(session=session, audit=SEEDER)
    finally:
        await engine.dispose()
    await demo.seed_studies(settings, SEEDER)
    engine = db.create_engine(settings)
    try:
        async with db.create_sessionmaker(engine)() as session:
            requests = (
                await session.execute(
                    select(
                        ReadingRequest.specialty, ReadingRequest.priority, ReadingRequest.status
                    ).order_by(ReadingRequest.id)
                )
            ).all()
            pdf = await session.scalar(select(SignedReport.pdf))
            on_duty = sorted(
                await session.scalars(
                    select(User.username).join(Duty, Duty.user_id == User.id).where(Duty.on_duty)
                )
            )
    finally:
        await engine.dispose()
    assert [tuple(r) for r in requests] == [
        ("cardiology", "stat", "waiting"),
        ("radiology", "routine", "waiting"),
        ("cardiology", "urgent", "signed"),
    ]
    assert on_duty == ["dr.heart", "dr.ray", "dr.skin"]
    assert pdf is not None
    found = await asyncio.to_thread(verify_report_pdf, pdf)
    assert found.valid, found.problems
    assert found.signer_username == "dr.heart"
    assert [a.actor for a in await _events(settings, "report.sign")] == ["dr.heart"]


async def _events(settings: Settings, action: str) -> list[AuditEvent]:
    engine = db.create_engine(settings)
    try:
        async with db.create_sessionmaker(engine)() as session:
            return list(
                await session.scalars(select(AuditEvent).where(AuditEvent.action == action))
            )
    finally:
        await engine.dispose()


def test_the_demo_ct_stack_scrolls_through_different_slices() -> None:
    patient = Patient(
        name="Okafor^Grace", identifier="RC-0001", sex="F", org_id=1, birth_date=date(1956, 3, 14)
    )
    instances = [pydicom.dcmread(io.BytesIO(data)) for data in demo.demo_images("X", patient)]
    stack = [ds for ds in instances if ds.SeriesNumber == 1]
    assert len(stack) == 16
    assert len({ds.SOPInstanceUID for ds in instances}) == 17
    assert len({ds.SeriesInstanceUID for ds in instances}) == 2
    assert [int(ds.InstanceNumber) for ds in stack] == list(range(1, 17))
    pixels = [ds.pixel_array for ds in stack]
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(pixels))
    hu = pixels[8].astype(float) * float(stack[8].RescaleSlope) + float(stack[8].RescaleIntercept)
    assert {-1000.0, -820.0, 40.0, 700.0} <= set(np.unique(hu))
    ecg = pydicom.dcmread(io.BytesIO(demo.demo_ecg("X", patient)))
    assert (str(ecg.PatientName), ecg.PatientID) == ("Okafor^Grace", "RC-0001")
    assert "WaveformAnnotationSequence" in ecg  # the device's own measurements come along
    assert demo.demo_ecg("X", patient) == demo.demo_ecg("X", patient)  # the same UIDs each time


async def test_the_demo_kiosk_link_enrols_and_the_returning_person_has_a_trend(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    printed = _banner(data_dir)
    code = re.findall(r"/kiosk\?enrol=([0-9-]+)", printed)[0]
    settings = Settings(data_dir=data_dir, secret_key="s" * 32, dicom_port=0)
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        entered = await client.get(f"/kiosk?enrol={code}", allow_redirects=False)
        assert entered.status == 303
        assert "doorstep_kiosk" in entered.cookies
        token = entered.cookies["doorstep_kiosk"].value
        kiosk = {"Authorization": f"Bearer {token}"}
        visit = await client.post(
            "/api/v1/kiosk/visits",
            json={"phone": "138 0013 8000", "birth_date": "1951-05-20", "consent": True},
            headers=kiosk,
        )
        assert visit.status == 201, await visit.text()
        body = await visit.json()
        assert body["returning"] is True
        history = await client.get(
            f"/api/v1/kiosk/people/{body['person_id']}/vitals", headers=kiosk
        )
        systolic = [r["systolic"] for r in (await history.json())["readings"]]
        assert systolic == [158, 151, 146, 141, 137]
