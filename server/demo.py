"""Seeded demonstration data for `doorstep demo`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import service as accounts
from server.accounts.models import Organisation
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


async def seed(*, session: AsyncSession, audit: Recorder) -> list[DemoLogin] | None:
    """Create the demo network in an empty database; None when it already holds organisations."""
    if await session.scalar(select(func.count()).select_from(Organisation)):
        return None
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
    return logins
