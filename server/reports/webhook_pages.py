"""Admin pages of a clinic's report webhook: its URL, a new secret (shown once), disabling
it, and retrying a failed delivery. Shown on the organisation page.

Every change is an action of `server.reports.webhooks`, which audits it.
"""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.access import allow
from server.accounts.correction_pages import organisation_of, organisation_page
from server.context import db, recorder
from server.errors import DomainError, NotFound
from server.forms import read_form
from server.identity import Role
from server.reports import webhooks

_ORG = "/admin/organisations/{id:[0-9]{1,12}}/webhook"


def setup_webhook_pages(app: web.Application) -> None:
    """Register the webhook forms of the organisation page."""
    app.router.add_post(_ORG, webhook_configure)
    app.router.add_post(f"{_ORG}/secret", webhook_secret)
    app.router.add_post(f"{_ORG}/disable", webhook_disable)
    app.router.add_post(f"{_ORG}/deliveries/{{delivery:[0-9]{{1,12}}}}/retry", webhook_retry)


def _back(org_id: int, what: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/admin/organisations/{org_id}?webhook={what}#webhook")


@allow(Role.ADMIN, page=True)
async def webhook_configure(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations/{id}/webhook: set the URL (webhook.configure)."""
    org = await organisation_of(request)
    url = (await read_form(request)).text("url", limit=4096)
    settings = request.app[keys.SETTINGS]
    try:
        async with db(request) as session:
            secret = await webhooks.configure(
                session=session,
                audit=recorder(request),
                org_id=org.id,
                url=url,
                allow_loopback=settings.webhook_allow_loopback,
                secret_key=settings.resolved_secret_key(),
            )
    except DomainError as error:
        return await organisation_page(
            request, org=org, status=error.status, webhook_error=error.message, webhook_url=url
        )
    if secret is not None:
        return await organisation_page(request, org=org, new_secret=secret)
    raise _back(org.id, "saved")


@allow(Role.ADMIN, page=True)
async def webhook_secret(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations/{id}/webhook/secret: a new secret, shown once."""
    org = await organisation_of(request)
    try:
        async with db(request) as session:
            secret = await webhooks.rotate_secret(
                session=session,
                audit=recorder(request),
                org_id=org.id,
                secret_key=request.app[keys.SETTINGS].resolved_secret_key(),
            )
    except DomainError as error:
        return await organisation_page(
            request, org=org, status=error.status, webhook_error=error.message
        )
    return await organisation_page(request, org=org, new_secret=secret)


@allow(Role.ADMIN, page=True)
async def webhook_disable(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations/{id}/webhook/disable (webhook.disable)."""
    org = await organisation_of(request)
    try:
        async with db(request) as session:
            await webhooks.disable(session=session, audit=recorder(request), org_id=org.id)
    except DomainError as error:
        return await organisation_page(
            request, org=org, status=error.status, webhook_error=error.message
        )
    raise _back(org.id, "disabled")


@allow(Role.ADMIN, page=True)
async def webhook_retry(request: web.Request) -> web.StreamResponse:
    """POST /admin/organisations/{id}/webhook/deliveries/{delivery}/retry: try again now."""
    org = await organisation_of(request)
    delivery_id = int(request.match_info["delivery"])
    try:
        async with db(request) as session:
            await webhooks.retry(
                session=session, audit=recorder(request), org_id=org.id, delivery_id=delivery_id
            )
    except NotFound:
        raise
    except DomainError as error:
        return await organisation_page(
            request, org=org, status=error.status, webhook_error=error.message
        )
    raise _back(org.id, "retrying")
