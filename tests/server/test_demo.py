"""`doorstep demo`: the seeded network, and the logins it prints on every start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from server import db, demo
from server.accounts.models import User
from server.audit.service import AuditLog
from server.identity import Actor
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
            if line.startswith("  kiosk.harbour") or line.startswith("("):
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
