"""Helpers shared by the form pages: reading fields and auditing administrative writes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiDict
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.accounts.models import Organisation
from server.audit import service as audit
from server.errors import InvalidInput
from server.requests import actor


class Form:
    """The text fields of a submitted form, trimmed and bounded."""

    def __init__(self, fields: MultiDict[str]) -> None:
        self._fields = fields

    def text(self, name: str, *, limit: int = 256, strip: bool = True) -> str:
        """One field's value ('' when absent), cut to a sane length."""
        value = self._fields.get(name, "")
        return (value.strip() if strip else value)[:limit]

    def all(self, name: str, *, limit: int = 64) -> list[str]:
        """Every value of a repeated field (checkboxes, multi-selects)."""
        return [v.strip()[:limit] for v in self._fields.getall(name, []) if v.strip()]


def query_id(request: web.Request, name: str) -> int | None:
    """A numeric id from the query string, None when absent or not a number."""
    value = request.query.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


def org_options(orgs: Iterable[Organisation]) -> list[tuple[int, str]]:
    """(id, label) pairs for an organisation select."""
    return [(org.id, f"{org.name} ({org.kind.value})") for org in orgs]


def pick_org(orgs: Iterable[Organisation], org_id: str) -> Organisation:
    """The organisation chosen in a form's select (by id)."""
    for org in orgs:
        if str(org.id) == org_id:
            return org
    raise InvalidInput("Choose an organisation.")


async def read_form(request: web.Request) -> Form:
    """The submitted form (file parts are ignored)."""
    posted = await request.post()
    return Form(MultiDict((k, v) for k, v in posted.items() if isinstance(v, str)))


async def audit_admin(
    request: web.Request,
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: str | int,
    org_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record an administrator's write in the audit log, in the caller's transaction."""
    await audit.record(
        session=session,
        secret=request.app[keys.SECRET],
        actor=actor(request),
        action=action,
        object_type=object_type,
        object_id=object_id,
        org_id=org_id,
        details=details,
    )
