"""Admin pages: kiosk devices (enrol, issue and revoke their API tokens), through the actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts import administration
from server.accounts import service as accounts
from server.accounts.admin_pages import org_options, pick_org
from server.accounts.administration import TokenState, token_state
from server.accounts.models import Organisation, User
from server.context import db, recorder
from server.db import utcnow
from server.errors import DomainError, InvalidInput
from server.forms import Form, query_id, read_form
from server.identity import Role
from server.templates import render

DEFAULT_TOKEN_DAYS = 365


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A kiosk device account with its tokens, newest first."""

    user: User
    tokens: Sequence[TokenState]

    @property
    def live_tokens(self) -> int:
        """How many of its tokens still work."""
        return sum(1 for t in self.tokens if t.status == "active")


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
) -> web.Response:
    now = utcnow()
    async with db(request) as session:
        users = await accounts.list_users(session=session, role=Role.KIOSK)
        tokens = await accounts.list_tokens(session=session)
        orgs = await accounts.list_orgs(session=session)
        by_user: dict[int, list[TokenState]] = {}
        for token in tokens:
            by_user.setdefault(token.user_id, []).append(token_state(token, now))
        return render(
            request,
            "admin/devices.html",
            status=status,
            devices=[DeviceView(u, by_user.get(u.id, [])) for u in users],
            org_options=org_options(o for o in orgs if o.kind in administration.DEVICE_ORG_KINDS),
            error=error,
            values=values or {"expires_days": str(DEFAULT_TOKEN_DAYS)},
            revoked=query_id(request, "revoked"),
            changed=query_id(request, "changed"),
        )


@allow(Role.ADMIN, page=True)
async def device_list(request: web.Request) -> web.StreamResponse:
    """GET /admin/devices."""
    return await _page(request)


def _days(form: Form) -> int:
    text = form.text("expires_days", limit=8) or str(DEFAULT_TOKEN_DAYS)
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput("Token lifetime must be a whole number of days.")
    return int(text)


def _token_page(
    request: web.Request,
    *,
    device: User,
    org: Organisation,
    issued: accounts.IssuedToken,
    enrolled: bool,
) -> web.Response:
    return render(
        request,
        "admin/token.html",
        status=201,
        device=device,
        org=org,
        token=issued.token,
        expires_at=issued.record.expires_at,
        enrolled=enrolled,
    )


@allow(Role.ADMIN, page=True)
async def device_enrol(request: web.Request) -> web.StreamResponse:
    """POST /admin/devices: create a kiosk account and show its first token once."""
    form = await read_form(request)
    values = {
        "username": form.text("username", limit=64),
        "display_name": form.text("display_name", limit=128),
        "org_id": form.text("org_id", limit=12),
        "expires_days": form.text("expires_days", limit=8),
    }
    try:
        days = _days(form)
        async with db(request) as session:
            org = pick_org(await accounts.list_orgs(session=session), values["org_id"])
            device, issued = await administration.enrol_device(
                session=session,
                audit=recorder(request),
                username=values["username"],
                display_name=values["display_name"],
                org=org,
                expires_days=days,
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message, values=values)
    return _token_page(request, device=device, org=org, issued=issued, enrolled=True)


@allow(Role.ADMIN, page=True)
async def token_issue(request: web.Request) -> web.StreamResponse:
    """POST /admin/devices/{username}/tokens: a new token for a device, shown once."""
    form = await read_form(request)
    try:
        days = _days(form)
        async with db(request) as session:
            device = await accounts.get_user(
                session=session, username=request.match_info["username"]
            )
            issued = await administration.reissue_device_token(
                session=session, audit=recorder(request), device=device, expires_days=days
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    return _token_page(
        request, device=device, org=device.organisation, issued=issued, enrolled=False
    )


@allow(Role.ADMIN, page=True)
async def token_revoke(request: web.Request) -> web.StreamResponse:
    """POST /admin/tokens/{id}/revoke: the token stops working at once."""
    token_id = int(request.match_info["id"])
    try:
        async with db(request) as session:
            await administration.revoke_token(
                session=session,
                audit=recorder(request),
                changes=request.app[keys.ACCOUNT_CHANGES],
                token_id=token_id,
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    raise web.HTTPSeeOther(f"/admin/devices?revoked={token_id}")
