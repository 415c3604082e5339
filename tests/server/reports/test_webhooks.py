"""Report webhooks: signed notices to a real receiver, retries with backoff, nothing lost,
each attempt made once by one of several senders, URL rules, and the admin page.

The receivers are real aiohttp servers on free ports; the senders are the application's
own `webhooks.Sender`, driven here pass by pass (a background sender, when the app runs
one, shares the same database and the same claims, so the assertions hold either way).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from server import db, keys
from server.app import create_app
from server.errors import InvalidInput
from server.reports import lifetime, webhooks
from server.reports.models import WebhookAttempt, WebhookDelivery
from server.reports.webhook_pages import setup_webhook_pages
from server.settings import Settings
from tests.forms import post_form, sign_in
from tests.server.reports.flow import signed_report
from tests.support import PASSWORD, Client, World, audit_actions, audit_events, free_port

RETRIES = [0.2, 0.2, 0.2]
"""Short waits before each retry (the default is 30 s, 2 min, 10 min, 1 h, 6 h)."""
DEADLINE = 60.0
MAX_AGE = 300
_SECRET = re.compile(r'id="webhook-secret" class="token">([^<]+)<')
BODY_KEYS = {
    "type",
    "report_id",
    "request_id",
    "amends",
    "study_uid",
    "signer",
    "signed_at",
    "links",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback receivers allowed, short retries, and a known public URL for the links."""
    return settings.model_copy(
        update={
            "webhook_allow_loopback": True,
            "webhook_retry_seconds": RETRIES,
            "public_url": "https://doorstep.example",
        }
    )


@pytest.fixture
def app(app: web.Application) -> web.Application:
    """The application with the webhook pages (registered here until the lead wires them)."""
    if not _has_webhook_pages(app):
        setup_webhook_pages(app)
    return app


def _has_webhook_pages(app: web.Application) -> bool:
    return any(r.canonical == "/admin/organisations/{id}/webhook" for r in app.router.resources())


# A receiver ------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver: verifies every notice as a clinic would, answers from a script."""

    port: int
    answers: Callable[[int], int] = lambda _delivery: 200
    secret: str = ""
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(delivery id, body) of every POST."""
    problems: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}/doorstep/hook"

    def hits(self) -> Counter[str]:
        """POSTs received per delivery id."""
        return Counter(delivery for delivery, _ in self.seen)

    async def handle(self, request: web.Request) -> web.Response:
        """Check the notice like a receiver must, then answer as scripted."""
        raw = await request.read()
        stamp = request.headers.get("X-Doorstep-Timestamp", "")
        given = request.headers.get("X-Doorstep-Signature", "")
        expected = hmac.new(self.secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256)
        if not hmac.compare_digest(given, f"sha256={expected.hexdigest()}"):
            self.problems.append(f"bad signature {given!r}")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_AGE:
            self.problems.append(f"old or missing timestamp {stamp!r}")
        if request.content_type != "application/json":
            self.problems.append(f"content type {request.content_type}")
        notice = json.loads(raw)
        if request.headers.get("X-Doorstep-Event") != notice["type"]:
            self.problems.append("X-Doorstep-Event differs from the body's type")
        delivery = request.headers.get("X-Doorstep-Delivery", "")
        self.seen.append((delivery, notice))
        count = self.hits()[delivery]
        return web.Response(status=self.answers(count), text="x" * 1000)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Run the receiver on its port for the block."""
    app = web.Application()
    app.router.add_post("/doorstep/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


# Helpers ---------------------------------------------------------------------------


async def configure(client: Client, world: World, url: str) -> tuple[str, str]:
    """Set clinic-a's webhook on its organisation page: (the session CSRF, the secret)."""
    csrf = await sign_in(client, "admin")
    clinic = world.orgs["clinic-a"]
    response = await client.post(
        f"/admin/organisations/{clinic}/webhook",
        data={"url": url, "csrf_token": csrf},
        allow_redirects=False,
    )
    html = await response.text()
    assert response.status == 200, html
    assert response.headers["Cache-Control"] == "no-store"
    found = _SECRET.search(html)
    assert found is not None, "the new secret is not shown"
    return csrf, found.group(1)


@asynccontextmanager
async def sender(client: Client) -> AsyncIterator[webhooks.Sender]:
    """The application's sender over a fresh HTTP client."""
    http = lifetime.webhook_client(allow_loopback=True)
    try:
        yield lifetime.webhook_sender_for(client.app, http)
    finally:
        await http.close()


async def deliveries(client: Client) -> list[WebhookDelivery]:
    """Every delivery, oldest first."""
    async with client.app[keys.SESSIONMAKER]() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def attempts(client: Client, delivery_id: int) -> list[WebhookAttempt]:
    """The delivery log of one delivery, in attempt order."""
    async with client.app[keys.SESSIONMAKER]() as session:
        return list(
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.number)
            )
        )


async def until_settled(client: Client, *senders: webhooks.Sender) -> list[WebhookDelivery]:
    """Run the senders pass after pass until no delivery is pending (or fail at a deadline)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        rows = await deliveries(client)
        if rows and all(d.status != webhooks.PENDING for d in rows):
            return rows
        assert time.monotonic() < deadline, [(d.id, d.status, d.attempts) for d in rows]
        await asyncio.gather(*(s.send_due() for s in senders))
        await asyncio.sleep(0.05)


# Signed notices, retried -----------------------------------------------------------


async def test_a_signed_report_reaches_the_receiver_signed_after_two_failures(
    client: Client, world: World
) -> None:
    receiver = Receiver(free_port(), answers=lambda n: 500 if n <= 2 else 200)
    async with receiving(receiver):
        csrf, receiver.secret = await configure(client, world, receiver.url)
        assert receiver.secret.startswith("whsec_")
        study, request_id, signed = await signed_report(client, world)
        report_id = signed["report_id"]
        pending = await deliveries(client)
        assert [(d.report_id, d.event, d.org_id) for d in pending] == [
            (report_id, "report.signed", world.orgs["clinic-a"])
        ]
        async with sender(client) as one:
            [delivery] = await until_settled(client, one)

    assert receiver.problems == []
    assert (delivery.status, delivery.attempts, delivery.last_code) == ("delivered", 3, 200)
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    log = await attempts(client, delivery.id)
    assert [(a.number, a.outcome, a.code) for a in log] == [
        (1, "failure", 500),
        (2, "failure", 500),
        (3, "success", 200),
    ]
    assert all(a.response == "x" * 200 for a in log), "the answer is kept to 200 characters"
    first, second, third = log
    assert first.next_attempt_at is not None
    assert second.next_attempt_at is not None
    assert third.next_attempt_at is None
    assert second.started_at >= first.next_attempt_at, "a retry came before its backoff"
    assert third.started_at >= second.next_attempt_at, "a retry came before its backoff"

    assert receiver.hits() == Counter({str(delivery.id): 3})
    notice = receiver.seen[-1][1]
    assert set(notice) == BODY_KEYS
    base = f"https://doorstep.example/api/v1/reports/{report_id}"
    assert notice == {
        "type": "report.signed",
        "report_id": report_id,
        "request_id": request_id,
        "amends": None,
        "study_uid": study,
        "signer": notice["signer"],
        "signed_at": signed["signed_at"].replace("+00:00", "Z"),
        "links": {"record": base, "pdf": f"{base}.pdf", "fhir": f"{base}/fhir"},
    }
    assert notice["signer"]
    assert notice["signer"] == signed["signer"]
    raw = json.dumps([body for _, body in receiver.seen])
    for patient in ("Able", "Alice", "A-1", "1970"):
        assert patient not in raw, f"patient data {patient!r} in the webhook body"

    trail = [(e.outcome, json.loads(e.details)) for e in await audit_events(client.app)]
    delivered = [(o, d["attempt"], d["code"]) for o, d in trail if "attempt" in d]
    assert delivered == [("failure", 1, 500), ("failure", 2, 500), ("success", 3, 200)]
    assert await audit_actions(client.app, "webhook.") == [
        ("webhook.configure", "admin", "success"),
        ("webhook.deliver", "webhook-sender", "failure"),
        ("webhook.deliver", "webhook-sender", "failure"),
        ("webhook.deliver", "webhook-sender", "success"),
    ]
    page = await (await client.get(f"/admin/organisations/{world.orgs['clinic-a']}")).text()
    assert "Delivered" in page
    assert receiver.secret not in page
    assert csrf


async def test_an_addendum_is_announced_with_what_it_amends(client: Client, world: World) -> None:
    receiver = Receiver(free_port())
    async with receiving(receiver):
        _, receiver.secret = await configure(client, world, receiver.url)
        _, _, signed = await signed_report(client, world)
        added = await client.post(
            f"/api/v1/reports/{signed['report_id']}/addenda",
            json={"text": "QT re-measured: 410 ms.", "password": PASSWORD},
            headers=world.auth("cardio"),
        )
        assert added.status == 201, await added.text()
        addendum = (await added.json())["report_id"]
        async with sender(client) as one:
            rows = await until_settled(client, one)
    assert receiver.problems == []
    assert [(d.event, d.report_id, d.status) for d in rows] == [
        ("report.signed", signed["report_id"], "delivered"),
        ("report.addendum", addendum, "delivered"),
    ]
    notices = {body["type"]: body for _, body in receiver.seen}
    assert notices["report.addendum"]["amends"] == signed["report_id"]
    assert notices["report.addendum"]["report_id"] == addendum


async def test_a_receiver_that_is_down_is_retried_then_failed_and_retried_by_hand(
    client: Client, world: World
) -> None:
    port = free_port()
    receiver = Receiver(port)
    csrf, receiver.secret = await configure(client, world, receiver.url)
    await signed_report(client, world)
    async with sender(client) as one:
        [delivery] = await until_settled(client, one)
    assert (delivery.status, delivery.attempts, delivery.last_code) == ("failed", 4, None)
    log = await attempts(client, delivery.id)
    assert [a.number for a in log] == [1, 2, 3, 4]
    assert all(a.outcome == "failure" and a.code is None for a in log)
    assert all(a.error is not None and a.error.startswith("cannot connect") for a in log), [
        a.error for a in log
    ]
    assert [a.next_attempt_at is None for a in log] == [False, False, False, True]
    assert delivery.next_attempt_at is None

    clinic = world.orgs["clinic-a"]
    page = await (await client.get(f"/admin/organisations/{clinic}")).text()
    assert "Retry now" in page
    assert "cannot connect" in page
    retry = f"/admin/organisations/{clinic}/webhook/deliveries/{delivery.id}/retry"
    status, _, _ = await post_form(client, retry, None)
    assert status == 403, "a form without the CSRF token was accepted"
    assert await audit_actions(client.app, "webhook.retry") == []
    status, _, location = await post_form(client, retry, csrf)
    assert (status, location) == (303, f"/admin/organisations/{clinic}?webhook=retrying#webhook")
    status, _, _ = await post_form(client, retry, csrf)
    assert status == 404, "a delivery that is not failed was retried again"

    async with receiving(receiver), sender(client) as one:
        [again] = await until_settled(client, one)
    assert (again.status, again.attempts, again.last_code) == ("delivered", 5, 200)
    assert receiver.problems == []
    assert receiver.hits() == Counter({str(delivery.id): 1})
    outcomes = [(e.action, e.outcome) for e in await audit_events(client.app, prefix="webhook.")]
    assert outcomes == [
        ("webhook.configure", "success"),
        *[("webhook.deliver", "failure")] * 4,
        ("webhook.retry", "success"),
        ("webhook.deliver", "success"),
    ]


async def test_the_background_sender_delivers_on_its_own(settings: Settings, world: World) -> None:
    app = create_app(settings)
    if lifetime.webhook_sender not in app.cleanup_ctx:
        app.cleanup_ctx.append(lifetime.webhook_sender)
    if not _has_webhook_pages(app):
        setup_webhook_pages(app)
    receiver = Receiver(free_port())
    async with receiving(receiver), TestClient(TestServer(app)) as client:
        _, receiver.secret = await configure(client, world, receiver.url)
        await signed_report(client, world)
        deadline = time.monotonic() + DEADLINE
        while not receiver.seen:
            assert time.monotonic() < deadline, "the background sender sent nothing"
            await asyncio.sleep(0.1)
        while (await deliveries(client))[0].status != webhooks.DELIVERED:
            assert time.monotonic() < deadline, "the attempt was not recorded"
            await asyncio.sleep(0.1)
    assert receiver.problems == []
    assert len(receiver.seen) == 1


# Several senders -------------------------------------------------------------------


async def test_two_senders_on_one_database_make_each_attempt_once(
    client: Client, world: World, settings: Settings
) -> None:
    count = 40
    receiver = Receiver(free_port(), answers=lambda n: 503 if n == 1 else 204)
    async with receiving(receiver):
        _, receiver.secret = await configure(client, world, receiver.url)
        await signed_report(client, world)
        async with client.app[keys.SESSIONMAKER]() as session, session.begin():
            [first] = await session.scalars(select(WebhookDelivery))
            for _ in range(count - 1):
                session.add(
                    WebhookDelivery(
                        org_id=first.org_id,
                        report_id=first.report_id,
                        event=first.event,
                        payload=first.payload,
                        status=webhooks.PENDING,
                        attempts=0,
                        created_at=first.created_at,
                        next_attempt_at=first.next_attempt_at,
                    )
                )
        other_engine = db.create_engine(settings)  # a second process's connection pool
        try:
            async with sender(client) as one, sender(client) as base:
                two = webhooks.Sender(
                    **{**_fields(base), "sessions": db.create_sessionmaker(other_engine)}
                )
                rows = await until_settled(client, one, two, one, two)
        finally:
            await other_engine.dispose()

    assert receiver.problems == []
    assert len(rows) == count
    assert [(d.status, d.attempts) for d in rows] == [("delivered", 2)] * count
    assert receiver.hits() == Counter({str(d.id): 2 for d in rows}), "an attempt made twice"
    for d in rows:
        assert [(a.number, a.code) for a in await attempts(client, d.id)] == [(1, 503), (2, 204)]
    assert len(await audit_events(client.app, "webhook.deliver")) == 2 * count


def _fields(sender: webhooks.Sender) -> dict[str, Any]:
    return {name: getattr(sender, name) for name in webhooks.Sender.__dataclass_fields__}


# URL rules and the admin page --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback", "problem"),
    [
        ("https://hooks.example.org/doorstep", False, None),
        ("https://hooks.example.org:8443/in?clinic=7", False, None),
        ("http://127.0.0.1:9000/hook", True, None),
        ("http://localhost/hook", True, None),
        ("http://127.0.0.1:9000/hook", False, "must use https://"),
        ("http://hooks.example.org/hook", True, "must use https://"),
        ("https://user:pass@hooks.example.org/hook", False, "must not carry credentials"),
        ("https://token@hooks.example.org/hook", False, "must not carry credentials"),
        ("ftp://hooks.example.org/hook", False, "must start with https://"),
        ("hooks.example.org/hook", False, "must start with https://"),
        ("https:///hook", False, "has no host"),
        ("https://hooks.example.org:99999/", False, "cannot be read"),
        ("https://hooks.example.org/a b", False, "spaces"),
        ("https://hooks.example.org/#top", False, "fragment"),
        ("", False, "Give the webhook's URL"),
    ],
)
def test_url_rules(url: str, loopback: bool, problem: str | None) -> None:
    if problem is None:
        assert webhooks.check_url(url, allow_loopback=loopback) == url
        return
    with pytest.raises(InvalidInput) as refused:
        webhooks.check_url(url, allow_loopback=loopback)
    assert problem in refused.value.message
    assert refused.value.status == 422


def test_the_secret_is_sealed_with_the_deployment_key() -> None:
    sealed = webhooks.seal("whsec_abc", secret_key=b"one")
    assert "whsec_abc" not in sealed
    assert webhooks.unseal(sealed, secret_key=b"one") == "whsec_abc"
    assert webhooks.unseal(sealed, secret_key=b"two") is None


async def test_admin_page_csrf_refusals_audit_and_disable(client: Client, world: World) -> None:
    clinic = world.orgs["clinic-a"]
    path = f"/admin/organisations/{clinic}/webhook"
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(client, path, None, {"url": "https://hooks.example.org/x"})
    assert status == 403
    status, html, _ = await post_form(client, path, csrf, {"url": "http://hooks.example.org/x"})
    assert status == 422
    assert "must use https://" in html
    assert 'value="http://hooks.example.org/x"' in html, "the typed URL is kept"
    assert await audit_actions(client.app, "webhook.") == []

    status, html, _ = await post_form(client, path, csrf, {"url": "https://hooks.example.org/x"})
    first = _SECRET.search(html)
    assert status == 200
    assert first is not None
    status, _, location = await post_form(
        client, path, csrf, {"url": "https://hooks.example.org/y"}
    )
    assert (status, location) == (303, f"/admin/organisations/{clinic}?webhook=saved#webhook")
    status, html, _ = await post_form(client, f"{path}/secret", csrf)
    second = _SECRET.search(html)
    assert status == 200
    assert second is not None
    assert second.group(1) != first.group(1)
    page = await (await client.get(f"/admin/organisations/{clinic}")).text()
    assert first.group(1) not in page, "a secret shown twice"
    assert second.group(1) not in page, "a secret shown twice"
    assert "https://hooks.example.org/y" in page

    status, _, location = await post_form(client, f"{path}/disable", csrf)
    assert (status, location) == (303, f"/admin/organisations/{clinic}?webhook=disabled#webhook")
    status, html, _ = await post_form(client, f"{path}/disable", csrf)
    assert status == 422
    assert "not enabled" in html
    await signed_report(client, world)
    assert await deliveries(client) == [], "a disabled webhook got a delivery"

    configured = [
        json.loads(e.details) for e in await audit_events(client.app, "webhook.configure")
    ]
    assert [d["secret"] for d in configured] == ["generated", "kept", "generated"]
    assert [d["url"] for d in configured] == [
        "https://hooks.example.org/x",
        "https://hooks.example.org/y",
        "https://hooks.example.org/y",
    ]
    assert await audit_actions(client.app, "webhook.disable") == [
        ("webhook.disable", "admin", "success")
    ]
    client.session.cookie_jar.clear()
    gp = await sign_in(client, "gp-a")
    status, _, _ = await post_form(client, path, gp, {"url": "https://evil.example/x"})
    assert status in (403, 404)
    assert len(await audit_events(client.app, prefix="webhook.")) == 4


# The schema ---------------------------------------------------------------------------


async def test_the_migration_creates_the_webhook_tables_as_the_models_say(
    settings: Settings,
) -> None:
    engine = db.create_engine(settings)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, db.Base.metadata)
        return [d for d in found if "webhook" in repr(d)]

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
