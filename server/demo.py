"""Seeded demonstration data for `doorstep demo`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import passwords
from server.accounts import service as accounts
from server.accounts.models import Organisation, User
from server.audit.service import Recorder
from server.identity import OrgKind, Role
from server.patients.models import Patient

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
    await audit.record(session, action="demo.seed")
    return Demo(seeded=True, logins=logins)
