"""The signed-in user's own account: replacing their password (a temporary one first)."""

from __future__ import annotations

from aiohttp import web

from server.access import allow
from server.accounts import corrections, passwords
from server.accounts import service as accounts
from server.context import db, principal, recorder
from server.errors import DomainError, InvalidInput
from server.forms import read_form
from server.identity import Role
from server.templates import render

_PEOPLE = (Role.GP, Role.SPECIALIST, Role.ADMIN)


def _page(
    request: web.Request, *, status: int = 200, errors: dict[str, str] | None = None
) -> web.Response:
    return render(
        request,
        "account/password.html",
        status=status,
        errors=errors or {},
        min_password=passwords.MIN_LENGTH,
        required=principal(request).password_change_required,
        changed=request.query.get("changed") == "1",
    )


@allow(*_PEOPLE, page=True)
async def password_form(request: web.Request) -> web.StreamResponse:
    """GET /account/password."""
    return _page(request)


@allow(*_PEOPLE, page=True)
async def password_change(request: web.Request) -> web.StreamResponse:
    """POST /account/password: the current password and the new one twice."""
    form = await read_form(request)
    current = form.text("current", limit=1024, strip=False)
    new = form.text("new", limit=1025, strip=False)
    if not current:
        return _page(request, status=422, errors={"current": "Enter your current password."})
    if new != form.text("repeat", limit=1025, strip=False):
        return _page(request, status=422, errors={"repeat": "The new passwords differ."})
    caller = principal(request)
    try:
        async with db(request) as session:
            user = await accounts.get_user(session=session, username=caller.username)
            await corrections.change_own_password(
                session=session,
                audit=recorder(request),
                user=user,
                current=current,
                new=new,
                session_id=caller.session_id,
            )
    except DomainError as error:
        field = "new" if isinstance(error, InvalidInput) else "current"
        return _page(request, status=422, errors={field: error.message})
    raise web.HTTPSeeOther("/account/password?changed=1")
