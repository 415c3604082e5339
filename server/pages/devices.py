"""Admin pages: kiosk devices (enrol, issue and revoke their API tokens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from server.access import allow
from server.accounts import invalidation
from server.accounts import service as accounts
from server.accounts.models import ApiToken, Organisation, OrgKind, Role, User
from server.db import utcnow
from server.errors import DomainError, InvalidInput
from server.pages.forms import Form, audit_admin, org_options, pick_org, query_id, read_form
from server.requests import db
from server.templates import render

DEVICE_ORG_KINDS = (OrgKind.CORNER, OrgKind.CLINIC)
DEFAULT_TOKEN_DAYS = 365


@dataclass(frozen=True, slots=True)
class TokenView:
    """One of a device's tokens and whether it still works."""

    id: int
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A kiosk device account with its tokens, newest first."""

    user: User
    tokens: Sequence[TokenView]

    @property
    def live_tokens(self) -> int:
        """How many of its tokens still work."""
        return sum(1 for t in self.tokens if t.status == "active")


def token_view(token: ApiToken, now: datetime) -> TokenView:
    """A token's page form with its status: active, expired or revoked."""
    if token.revoked_at is not None:
        status = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return TokenView(
        id=token.id,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        status=status,
    )


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: Mapping[str, str] | None = None,
) -> web.Response:
    now = utcnow()
    async with db(request) as session, session.begin():
        users = await accounts.list_users(session=session, role=Role.KIOSK)
        tokens = await accounts.list_tokens(session=session)
        orgs = await accounts.list_orgs(session=session)
        by_user: dict[int, list[TokenView]] = {}
        for token in tokens:
            by_user.setdefault(token.user_id, []).append(token_view(token, now))
        return render(
            request,
            "admin/devices.html",
            status=status,
            devices=[DeviceView(u, by_user.get(u.id, [])) for u in users],
            org_options=org_options(o for o in orgs if o.kind in DEVICE_ORG_KINDS),
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
        async with db(request) as session, session.begin():
            org = pick_org(await accounts.list_orgs(session=session), values["org_id"])
            device = await accounts.add_user(
                session=session,
                username=values["username"],
                display_name=values["display_name"],
                org=org,
                role=Role.KIOSK,
                password=None,
            )
            issued = await accounts.create_token(
                session=session, user=device, label="enrolment", expires_days=days
            )
            await audit_admin(
                request,
                session,
                action="device.enrol",
                object_type="user",
                object_id=device.id,
                org_id=org.id,
                details={"username": device.username, "token_id": issued.record.id},
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
        async with db(request) as session, session.begin():
            device = await accounts.get_user(
                session=session, username=request.match_info["username"]
            )
            if device.role is not Role.KIOSK:
                raise InvalidInput("Tokens are issued here only for kiosk devices.")
            if not device.is_active:
                raise InvalidInput("Enable the device before issuing it a token.")
            issued = await accounts.create_token(
                session=session, user=device, label="reissued", expires_days=days
            )
            await audit_admin(
                request,
                session,
                action="token.create",
                object_type="token",
                object_id=issued.record.id,
                org_id=device.org_id,
                details={"username": device.username},
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
        async with db(request) as session, session.begin():
            token = await accounts.revoke_token(session=session, token_id=token_id)
            await audit_admin(
                request,
                session,
                action="token.revoke",
                object_type="token",
                object_id=token.id,
                org_id=token.user.org_id,
                details={"username": token.user.username},
            )
    except DomainError as error:
        return await _page(request, status=error.status, error=error.message)
    await invalidation.user_changed(request, token.user_id)
    raise web.HTTPSeeOther(f"/admin/devices?revoked={token_id}")
