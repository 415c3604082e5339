"""Test support: external-tool requirements, the seeded world, and request helpers."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.accounts import service as accounts
from server.archive import service as archive
from server.archive.storage import BlobStorage
from server.audit.models import AuditEvent
from server.identity import Actor, OrgKind, Role
from server.patients.models import Patient
from server.settings import Settings

Client = TestClient[web.Request, web.Application]
REQUIRE_ALL = os.environ.get("DOORSTEP_REQUIRE_ALL") == "1"
PASSWORD = "correct horse battery"


def require(available: bool, reason: str) -> None:
    """Skip when an external tool is missing; fail instead under DOORSTEP_REQUIRE_ALL=1 (CI)."""
    if available:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


SHARED_DATA_FALLBACK = Path("/work/shared/data")
"""This workplace's shared sample data, for checkouts that are not beside it (CI clones)."""


def shared_data(*parts: str) -> Path:
    """A folder of the team's shared sample data (../shared/data), or skip/fail.

    Looked for in $DOORSTEP_SHARED_DATA, then in a `shared/data` beside the checkout or
    beside any folder above it, then in this workplace's shared folder.
    """
    configured = os.environ.get("DOORSTEP_SHARED_DATA")
    root = Path(__file__).resolve().parents[1]
    candidates = [Path(configured)] if configured else []
    candidates += [parent / "shared" / "data" for parent in root.parents]
    candidates.append(SHARED_DATA_FALLBACK)
    for base in candidates:
        if base.joinpath(*parts).exists():
            return base.joinpath(*parts)
    require(False, f"shared sample data {'/'.join(parts)} not found (set DOORSTEP_SHARED_DATA)")
    raise AssertionError("unreachable")


def require_tool(name: str) -> str:
    """Path of an external program, or skip/fail."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class World:
    """The seeded network every test starts from: ids, usernames and one live token per user."""

    orgs: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    patients: dict[str, int] = field(default_factory=dict)

    def auth(self, username: str) -> dict[str, str]:
        """Authorization header for a seeded user."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}


_ORGS = {
    "hospital": OrgKind.HOSPITAL,
    "clinic-a": OrgKind.CLINIC,
    "clinic-b": OrgKind.CLINIC,
    "corner": OrgKind.CORNER,
}
_USERS = {
    "admin": ("hospital", Role.ADMIN, ()),
    "gp-a": ("clinic-a", Role.GP, ()),
    "gp-b": ("clinic-b", Role.GP, ()),
    "cardio": ("hospital", Role.SPECIALIST, ("cardiology",)),
    "radio": ("hospital", Role.SPECIALIST, ("radiology",)),
    "kiosk": ("corner", Role.KIOSK, ()),
}
_PATIENTS = {
    "alice": ("clinic-a", "Able^Alice", "A-1"),
    "arthur": ("clinic-a", "Able^Arthur", "A-2"),
    "bella": ("clinic-b", "Brown^Bella", "B-1"),
}


async def seed_world(session: AsyncSession) -> World:
    """Create the test network: two clinics, a hospital, a corner, their users and patients."""
    world = World()
    orgs = {}
    for name, kind in _ORGS.items():
        orgs[name] = await accounts.add_org(session=session, name=name, kind=kind)
        world.orgs[name] = orgs[name].id
    for username, (org, role, specialties) in _USERS.items():
        user = await accounts.add_user(
            session=session,
            username=username,
            org=orgs[org],
            role=role,
            password=PASSWORD,
            specialties=specialties,
        )
        world.users[username] = user.id
        world.tokens[username] = (await accounts.create_token(session=session, user=user)).token
    for key, (org, name, identifier) in _PATIENTS.items():
        patient = Patient(
            org_id=orgs[org].id,
            name=name,
            birth_date=date(1970, 1, 1),
            sex="F",
            identifier=identifier,
        )
        session.add(patient)
        await session.flush()
        world.patients[key] = patient.id
    return world


async def store(
    app: web.Application,
    org_id: int,
    items: Iterable[bytes] | AsyncIterable[bytes],
    *,
    conflict: archive.ConflictPolicy = "reject",
    storage: BlobStorage | None = None,
) -> list[archive.StoreResult]:
    """Store instances through the app's Archive for org_id, as a test actor of that org."""
    base = app[keys.ARCHIVE]
    chosen = replace(base, conflict=conflict, storage=storage or base.storage)
    recorder = app[keys.AUDIT].recorder(Actor(user_id=None, username="test", org_id=org_id))
    return await chosen.store(audit=recorder, org_id=org_id, items=items, source="test")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes, as the archive names its blobs."""
    return hashlib.sha256(data).hexdigest()


async def audit_events(
    app: web.Application, action: str | None = None, *, prefix: str = ""
) -> list[AuditEvent]:
    """The audit events of one action (or of actions with a prefix), oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    async with app[keys.SESSIONMAKER]() as session:
        events = list(await session.scalars(query))
    return [e for e in events if e.action.startswith(prefix)]


async def audit_trail(app: web.Application, action: str) -> list[tuple[str, str, str]]:
    """(actor, object id, outcome) of the audit events of one action, oldest first."""
    return [(e.actor, e.object_id, e.outcome) for e in await audit_events(app, action)]


async def audit_actions(app: web.Application, prefix: str = "") -> list[tuple[str, str, str]]:
    """(action, actor, outcome) of every audit event whose action has the prefix, oldest first."""
    return [(e.action, e.actor, e.outcome) for e in await audit_events(app, prefix=prefix)]


async def schema_drift(settings: Settings, *tables: str) -> list[object]:
    """What the migrated database differs in from the models, on these tables (asserted to
    exist): alembic's autogenerate comparison, types included."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from server import db

    engine = db.create_engine(settings)

    def differences(connection: Connection) -> tuple[list[object], list[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, db.Base.metadata)
        present = connection.dialect.get_table_names(connection)
        return [d for d in found if any(t in repr(d) for t in tables)], present

    try:
        async with engine.connect() as connection:
            found, present = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert set(tables) <= set(present), sorted(set(tables) - set(present))
    return found
