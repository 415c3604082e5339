"""The reports feature's lifetime: the process's signing service and webhook sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from server import keys
from server.identity import Actor
from server.reports import egress, webhooks
from server.reports.signing import Signing
from server.settings import Settings

log = logging.getLogger(__name__)


def authority_directory(data_dir: Path) -> Path:
    """Where the deployment's signing CA lives: <data dir>/signing."""
    return data_dir / "signing"


async def signing(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the signing service (its CA is loaded, or created, on first use)."""
    settings = app[keys.SETTINGS]
    app[keys.SIGNING] = Signing(
        directory=authority_directory(settings.data_dir), secret=settings.resolved_secret_key()
    )
    yield


WEBHOOK_ACTOR = Actor(user_id=None, username="webhook-sender", org_id=None)
WEBHOOK_POLL_SECONDS = 5.0
"""How often each process looks for due webhook deliveries."""


def public_base(settings: Settings) -> str:
    """The root of the links a webhook carries: DOORSTEP_PUBLIC_URL, else the listener."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme = "https" if settings.tls_enabled else "http"
    return f"{scheme}://{settings.host}:{settings.port}"


def webhook_sender_for(app: web.Application, http: aiohttp.ClientSession) -> webhooks.Sender:
    """The application's webhook sender over an HTTP client session."""
    settings = app[keys.SETTINGS]
    return webhooks.Sender(
        sessions=app[keys.SESSIONMAKER],
        audit=app[keys.AUDIT].recorder(WEBHOOK_ACTOR),
        http=http,
        secret_key=settings.resolved_secret_key(),
        base_url=public_base(settings),
        allow_loopback=settings.webhook_allow_loopback,
        schedule=tuple(settings.webhook_retry_seconds),
    )


def webhook_client(*, allow_loopback: bool = False) -> aiohttp.ClientSession:
    """An HTTP client for webhooks: no cookies, no proxy from the environment, and
    connections to public addresses only (loopback too when allowed)."""
    resolver = egress.PublicResolver(allow_loopback=allow_loopback)
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=20, resolver=resolver),
    )


async def _send_periodically(sender: webhooks.Sender, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            sent = await sender.send_due()
        except Exception:
            log.exception("the webhook sender failed; trying again at the next interval")
            continue
        if sent:
            log.info("webhook sender: %d attempts", len(sent))


async def webhook_sender(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: this process's sender of due report webhooks."""
    http = webhook_client(allow_loopback=app[keys.SETTINGS].webhook_allow_loopback)
    sender = webhook_sender_for(app, http)
    task = asyncio.create_task(
        _send_periodically(sender, WEBHOOK_POLL_SECONDS), name="doorstep-webhook-sender"
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await http.close()
