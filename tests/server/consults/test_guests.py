"""Guest links: one-time links into a consult's call for people without an account.

Either doctor invites; opening the link spends it and sets a guest cookie bound to the
consult; the guest (cookie or `Authorization: Guest`) joins the signaling socket as a
`guest`, always into the lobby; revoking closes the guest's socket; a guest reaches
nothing else. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select, update

from server import keys, middleware
from server.access import allow
from server.accounts.middleware import authorise
from server.app import create_app
from server.consults.guests import digest
from server.consults.models import ConsultGuest
from server.consults.signaling import channel
from server.context import guest_credential
from server.events.bus import Subscription
from server.identity import Role
from server.settings import Settings
from tests.server.consults.calls import Signal, accepted_consult, guest_signal
from tests.server.consults.helpers import act, asked, consult, on_duty
from tests.support import Client, World, audit_events, audit_trail, schema_drift

COOKIE = "doorstep_guest"


async def _invite(
    client: Client, world: World, consult_id: int, user: str = "gp-a", **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/consults/{consult_id}/guests", json=body, headers=world.auth(user)
    )
    assert response.status == 201, await response.text()
    found: dict[str, Any] = await response.json()
    return found


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def _open(client: Client, url: str, cookie: str | None = None) -> tuple[int, str, str]:
    """Open a guest link as a browser with (or without) a guest cookie: status, Location,
    the new guest cookie ('' if none). The client keeps no cookies between calls."""
    client.session.cookie_jar.clear()
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    response = await client.get(_path(url), headers=headers, allow_redirects=False)
    morsel = response.cookies.get(COOKIE)
    text = await response.text()
    client.session.cookie_jar.clear()
    if morsel is not None:
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert morsel["path"] == "/"
        assert not morsel["secure"]  # plain HTTP in the tests; Secure under TLS
    location = response.headers.get("Location", "") or text
    return response.status, location, morsel.value if morsel is not None else ""


async def _guest_in(client: Client, world: World, consult_id: int, **body: Any) -> tuple[int, str]:
    """An invited guest who opened their link: (guest id, guest cookie value)."""
    invitation = await _invite(client, world, consult_id, **body)
    status, location, cookie = await _open(client, invitation["url"])
    assert status == 303, location
    assert location == f"/consults/{consult_id}"
    assert cookie
    return invitation["id"], cookie


def _as_guest(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={cookie}"}


async def _next_on_bus(heard: Subscription, kind: str) -> dict[str, Any]:
    """The next (small, unsplit) message of this kind on a room's bus channel."""
    async for delivery in heard:
        message = delivery.event.get("m")
        if isinstance(message, dict) and message.get("k") == kind:
            return message
    raise AssertionError("the bus closed")


async def test_either_doctor_invites_and_lists_and_strangers_cannot(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    before = datetime.now(UTC)
    by_gp = await _invite(client, world, consult_id, label="  Patient   at home ")
    assert by_gp["label"] == "Patient at home"
    assert by_gp["state"] == "open"
    assert by_gp["created_by"] == "gp-a"
    assert by_gp["url"].startswith("http://127.0.0.1:")
    token = by_gp["url"].rsplit("/consults/guest/", 1)[1]
    assert len(token) >= 43
    expires = datetime.fromisoformat(by_gp["expires_at"])
    assert before + timedelta(minutes=119) < expires < before + timedelta(minutes=121)
    by_specialist = await _invite(
        client, world, consult_id, user="cardio", label="Interpreter", expires_in_minutes=30
    )
    assert by_specialist["created_by"] == "cardio"
    assert datetime.fromisoformat(by_specialist["expires_at"]) < expires
    empty = await client.post(f"/api/v1/consults/{consult_id}/guests", headers=world.auth("gp-a"))
    assert empty.status == 201, await empty.text()
    assert (await empty.json())["label"] == ""

    listed = await client.get(f"/api/v1/consults/{consult_id}/guests", headers=world.auth("cardio"))
    assert listed.status == 200
    links = await listed.json()
    assert [g["id"] for g in links] == [
        (await empty.json())["id"],
        by_specialist["id"],
        by_gp["id"],
    ]
    assert all("url" not in g and token not in str(g) for g in links)
    async with client.app[keys.SESSIONMAKER]() as session:
        stored = list(await session.scalars(select(ConsultGuest.token_digest)))
    assert digest(token) in stored
    assert token not in stored

    for stranger in ("gp-b", "radio"):
        for method in ("post", "get"):
            refused = await getattr(client, method)(
                f"/api/v1/consults/{consult_id}/guests", headers=world.auth(stranger)
            )
            assert refused.status == 404, stranger
        gone = await client.delete(
            f"/api/v1/consults/{consult_id}/guests/{by_gp['id']}", headers=world.auth(stranger)
        )
        assert gone.status == 404
    kiosk = await client.post(
        f"/api/v1/consults/{consult_id}/guests", json={}, headers=world.auth("kiosk")
    )
    assert kiosk.status == 403
    for bad in (
        {"expires_in_minutes": 0},
        {"expires_in_minutes": 24 * 60 + 1},
        {"label": "x" * 101},
        {"token": "mine"},
        {"expires_in_minutes": "soon"},
    ):
        response = await client.post(
            f"/api/v1/consults/{consult_id}/guests", json=bad, headers=world.auth("gp-a")
        )
        assert response.status == 422, bad
        assert (await response.json())["error"]["code"] == "invalid"
    missing = await client.delete(
        f"/api/v1/consults/{consult_id}/guests/999999", headers=world.auth("gp-a")
    )
    assert missing.status == 404
    invites = await audit_trail(client.app, "consult.guest.invite")
    assert [a for a, _, _ in invites] == ["gp-a", "cardio", "gp-a"]


async def test_guests_only_for_accepted_or_live_consults(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    requested = await asked(client, world)
    for user in ("gp-a", "cardio"):
        response = await client.post(
            f"/api/v1/consults/{requested['id']}/guests", json={}, headers=world.auth(user)
        )
        assert response.status == 409, user
    consult_id = await accepted_consult(client, world)
    invitation = await _invite(client, world, consult_id)
    guest_id, cookie = await _guest_in(client, world, consult_id)
    status, _ = await act(client, world, consult_id, "end", "gp-a")
    assert status == 200
    ended = await client.post(
        f"/api/v1/consults/{consult_id}/guests", json={}, headers=world.auth("gp-a")
    )
    assert ended.status == 409
    status, page, _ = await _open(client, invitation["url"])
    assert status == 410
    assert "This consult has ended" in page
    with pytest.raises(WSServerHandshakeError) as over:
        await Signal.open(client, consult_id, _as_guest(cookie))
    assert over.value.status == 409
    listed = await client.get(f"/api/v1/consults/{consult_id}/guests", headers=world.auth("gp-a"))
    assert {g["id"]: g["state"] for g in await listed.json()}[guest_id] == "ended"


async def test_a_link_opens_once_and_its_cookie_lets_the_browser_back_in(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    invitation = await _invite(client, world, consult_id, label="Daughter")
    status, location, cookie = await _open(client, invitation["url"])
    assert (status, location) == (303, f"/consults/{consult_id}")
    assert cookie
    assert cookie not in invitation["url"]

    status, page, again = await _open(client, invitation["url"])
    assert status == 410
    assert "This link has been used already; ask the doctor for a new one." in page
    assert again == ""
    assert 'href="/patients"' not in page  # no navigation for a guest
    status, location, _ = await _open(client, invitation["url"], cookie=cookie)
    assert (status, location) == (303, f"/consults/{consult_id}"), "the same browser goes back"
    status, page, _ = await _open(client, invitation["url"][:-3] + "xyz")
    assert status == 410
    assert "not valid" in page

    for _reload in range(2):  # a reload: the cookie rejoins, into the lobby each time
        guest = await Signal.open(client, consult_id, _as_guest(cookie))
        welcome = await guest.join("guest")
        assert welcome["type"] == "welcome"
        await guest.next("lobby")
        await guest.close()
    raw = await Signal.open(client, consult_id, {"Authorization": f"Guest {cookie}"})
    await raw.join("guest")
    await raw.next("lobby")
    await raw.close()
    with pytest.raises(WSServerHandshakeError) as bogus:
        await Signal.open(client, consult_id, _as_guest("not-a-credential"))
    assert bogus.value.status == 404, "no guest of this consult"
    with pytest.raises(WSServerHandshakeError) as with_token:
        await Signal.open(client, consult_id, _as_guest(invitation["url"].rsplit("/", 1)[1]))
    assert with_token.value.status == 404, "the link's token is no credential"
    other = await accepted_consult(client, world)
    with pytest.raises(WSServerHandshakeError) as elsewhere:
        await Signal.open(client, other, _as_guest(cookie))
    assert elsewhere.value.status == 404, "the cookie is bound to one consult"


async def test_a_cross_site_click_gets_a_page_that_moves_on_by_itself(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    invitation = await _invite(client, world, consult_id)
    response = await client.get(
        _path(invitation["url"]), headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    assert response.status == 200
    assert response.headers["Refresh"] == f"0; url=/consults/{consult_id}"
    assert f'href="/consults/{consult_id}"' in await response.text()
    assert response.cookies[COOKIE]["samesite"] == "Strict"
    client.session.cookie_jar.clear()


async def test_an_expired_link_and_an_expired_guest_are_refused(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    unopened = await _invite(client, world, consult_id)
    guest_id, cookie = await _guest_in(client, world, consult_id)
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ConsultGuest).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    status, page, _ = await _open(client, unopened["url"])
    assert status == 410
    assert "This link has expired" in page
    with pytest.raises(WSServerHandshakeError) as late:
        await Signal.open(client, consult_id, _as_guest(cookie))
    assert late.value.status == 401
    listed = await client.get(f"/api/v1/consults/{consult_id}/guests", headers=world.auth("gp-a"))
    assert {g["state"] for g in await listed.json()} == {"expired"}
    refused = await audit_events(client.app, "consult.guest.redeem")
    assert [(e.actor, e.outcome) for e in refused] == [
        (f"guest:{guest_id}", "success"),
        ("anonymous", "denied"),
    ]


async def test_the_host_admits_a_guest_and_revoking_closes_its_socket(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    guest_id, cookie = await _guest_in(client, world, consult_id, label="Patient at home")
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    await host.peers_become(host.peer)
    guest = await Signal.open(client, consult_id, _as_guest(cookie))
    await guest.join("guest")
    await guest.next("lobby")
    knock = await host.next("knock")
    assert knock == {"type": "knock", "peer": guest.peer, "name": "Patient at home"}
    await guest.send("chat", text="hello?")
    assert (await guest.next("error"))["code"] == "not_admitted"
    await host.send("admit", peer=guest.peer)
    room = await guest.peers_become(guest.peer, host.peer)
    assert {p["peer"]: p["role"] for p in room} == {guest.peer: "guest", host.peer: "host"}
    assert [p["name"] for p in room if p["peer"] == guest.peer] == ["Patient at home"]
    await host.peers_become(guest.peer, host.peer)
    await guest.send("chat", text="I can see you now.")
    assert (await host.next("chat"))["text"] == "I can see you now."
    notes = (await consult(client, world, consult_id))["notes"]
    assert [(n["author"], n["text"], n["kind"]) for n in notes] == [
        ("Patient at home (guest)", "I can see you now.", "chat")
    ]

    revoked = await client.delete(
        f"/api/v1/consults/{consult_id}/guests/{guest_id}", headers=world.auth("gp-a")
    )
    assert revoked.status == 200, await revoked.text()
    assert (await revoked.json())["state"] == "revoked"
    assert (await guest.next("error"))["code"] == "revoked"
    assert await guest.closed() == 1008
    await host.peers_become(host.peer)
    with pytest.raises(WSServerHandshakeError) as back:
        await Signal.open(client, consult_id, _as_guest(cookie))
    assert back.value.status == 401
    again = await client.delete(
        f"/api/v1/consults/{consult_id}/guests/{guest_id}", headers=world.auth("cardio")
    )
    assert again.status == 200
    await host.close()

    joins = await audit_events(client.app, "consult.join")
    assert [(e.actor, e.actor_id) for e in joins] == [
        ("cardio", world.users["cardio"]),
        (f"guest:{guest_id}", None),
    ]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.admit")] == [
        f"guest:{guest_id}"
    ]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.guest.revoke")] == ["gp-a"]
    redeemed = await audit_events(client.app, "consult.guest.redeem")
    assert [(e.actor, e.actor_id, e.object_id) for e in redeemed] == [
        (f"guest:{guest_id}", None, str(consult_id))
    ]
    assert '"label":"Patient at home"' in redeemed[0].details


async def test_a_revocation_reaches_the_guest_s_socket_in_another_process(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    here, cookie = await _guest_in(client, world, consult_id)
    elsewhere, _ = await _guest_in(client, world, consult_id)
    bus = client.app[keys.EVENT_BUS]
    guest = await Signal.open(client, consult_id, _as_guest(cookie))
    await guest.join("guest")
    await guest.next("lobby")
    async with bus.subscribe(channel(consult_id)) as heard:
        revoked = await client.delete(
            f"/api/v1/consults/{consult_id}/guests/{elsewhere}", headers=world.auth("gp-a")
        )
        assert revoked.status == 200
        kick = await _next_on_bus(heard, "kick")
        assert kick == {"k": "kick", "guest": elsewhere}, "the other processes are told"
    other_process = {"n": "other-node", "m": {"k": "kick", "guest": here}}
    await bus.publish(channel(consult_id), other_process)
    assert (await guest.next("error"))["code"] == "revoked"
    assert await guest.closed() == 1008


async def test_a_guest_waits_in_the_lobby_even_with_auto_admit(
    settings: Settings, world: World
) -> None:
    admitting = settings.model_copy(update={"consult_auto_admit": True})
    async with TestClient(TestServer(create_app(admitting))) as client:
        consult_id = await accepted_consult(client, world)
        _, cookie = await _guest_in(client, world, consult_id)
        host = await Signal.open(client, consult_id, world.auth("cardio"))
        await host.join("host")
        gp = await Signal.open(client, consult_id, world.auth("gp-a"))
        await gp.join("participant")
        await host.peers_become(gp.peer, host.peer)
        guest = await Signal.open(client, consult_id, _as_guest(cookie))
        await guest.join("guest")
        await guest.next("lobby")
        knock = await host.next("knock")
        assert knock == {"type": "knock", "peer": guest.peer, "name": "Guest"}
        await host.send("chat", text="only the GP hears this")
        assert (await gp.next("chat"))["text"] == "only the GP hears this"
        assert [m for m in guest.seen if m["type"] in ("peers", "chat")] == []
        for socket in (guest, gp, host):
            await socket.close()


async def test_a_guest_reaches_nothing_but_its_call(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    _, cookie = await _guest_in(client, world, consult_id)
    guest = _as_guest(cookie)
    raw = {"Authorization": f"Guest {cookie}"}
    for path in (
        "/api/v1/consults",
        f"/api/v1/consults/{consult_id}",
        f"/api/v1/consults/{consult_id}/guests",
        "/api/v1/me",
        "/api/v1/patients",
        f"/api/v1/patients/{world.patients['alice']}",
        "/dicom-web/studies",
        "/api/v1/worklist",
        "/api/v1/events",
    ):
        for headers in (guest, raw):
            response = await client.get(path, headers=headers, allow_redirects=False)
            assert response.status == 401, (path, headers, response.status)
    for path in ("/", "/patients", "/consults", f"/consults/{consult_id}/status", "/viewer"):
        response = await client.get(path, headers=guest, allow_redirects=False)
        assert response.status in (303, 401, 404), (path, response.status)
        if response.status == 303:
            assert response.headers["Location"].startswith("/login"), path
    posted = await client.post(f"/api/v1/consults/{consult_id}/guests", json={}, headers=raw)
    assert posted.status == 401
    revoke = await client.delete(f"/api/v1/consults/{consult_id}/guests/1", headers=raw)
    assert revoke.status == 401
    foreign = await client.get(
        f"/api/v1/consults/{consult_id}/signal",
        headers={**guest, "Origin": "http://evil.example"},
    )
    assert foreign.status == 403, "a guest's socket comes from this origin only"
    client.session.cookie_jar.clear()


async def test_a_guest_gets_turn_credentials_of_its_own_for_its_call(
    settings: Settings, world: World
) -> None:
    turning = settings.model_copy(
        update={
            "turn_urls": ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"],
            "turn_secret": SecretStr("a turn secret"),
        }
    )
    async with TestClient(TestServer(create_app(turning))) as client:
        consult_id = await accepted_consult(client, world)
        guest_id, cookie = await _guest_in(client, world, consult_id)
        for headers in (_as_guest(cookie), {"Authorization": f"Guest {cookie}"}):
            response = await client.get(f"/api/v1/consults/{consult_id}/ice", headers=headers)
            assert response.status == 200, await response.text()
            servers = (await response.json())["ice_servers"]
            turn = [s for s in servers if "username" in s]
            assert [s["username"].split(":", 1)[1] for s in turn] == [f"guest-{guest_id}"]
        other = await accepted_consult(client, world)
        elsewhere = await client.get(f"/api/v1/consults/{other}/ice", headers=_as_guest(cookie))
        assert elsewhere.status == 404
        revoked = await client.delete(
            f"/api/v1/consults/{consult_id}/guests/{guest_id}", headers=world.auth("cardio")
        )
        assert revoked.status == 200
        late = await client.get(f"/api/v1/consults/{consult_id}/ice", headers=_as_guest(cookie))
        assert late.status == 401


async def test_the_access_rules_let_a_guest_through_to_guest_routes_only(
    settings: Settings,
) -> None:
    """What the call page `/consults/{id}` relies on: `@allow(..., page=True, guest=True)`."""

    @allow(Role.GP, Role.SPECIALIST, page=True, guest=True)
    async def call_page(request: web.Request) -> web.Response:
        return web.Response(text=f"guest {guest_credential(request)} {request[keys.PRINCIPAL]}")

    @allow(Role.GP, page=True)
    async def other_page(request: web.Request) -> web.Response:
        return web.Response(text="records")

    app = web.Application(middlewares=[middleware.errors, authorise])
    app[keys.SETTINGS] = settings
    app.router.add_get("/consults/{id}", call_page)
    app.router.add_post("/api/v1/consults/{id}/signal", call_page)
    app.router.add_get("/patients", other_page)
    async with TestClient(TestServer(app)) as client:
        seen = await client.get("/consults/5", headers=_as_guest("c123"))
        assert (seen.status, await seen.text()) == (200, "guest c123 None")
        raw = await client.get("/consults/5", headers={"Authorization": "Guest c456"})
        assert await raw.text() == "guest c456 None"
        for headers in ({}, {"Authorization": "Guest "}, _as_guest("x" * 129)):
            nobody = await client.get("/consults/5", headers=headers, allow_redirects=False)
            assert nobody.status == 303, headers
            assert nobody.headers["Location"].startswith("/login")
        posted = await client.post(
            "/api/v1/consults/5/signal", headers={"Authorization": "Guest c456"}
        )
        assert posted.status == 403, "guests only GET"
        records = await client.get("/patients", headers=_as_guest("c123"), allow_redirects=False)
        assert records.status == 303
        assert records.headers["Location"].startswith("/login")
        header = await client.get(
            "/patients", headers={"Authorization": "Guest c123"}, allow_redirects=False
        )
        assert header.status == 303


async def test_the_migration_creates_the_guest_links_as_the_model_declares(
    settings: Settings, world: World
) -> None:
    assert await schema_drift(settings, "consult_guests") == []


async def test_the_call_page_shows_a_guest_the_call_and_nothing_else(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    guest_id, cookie = await _guest_in(client, world, consult_id, label="Patient at home")
    client.session.cookie_jar.clear()
    page = await client.get(f"/consults/{consult_id}", headers=_as_guest(cookie))
    assert page.status == 200, await page.text()
    html = await page.text()
    assert 'data-module="consult-call"' in html
    assert 'data-role="guest"' in html
    assert 'data-name="Patient at home"' in html
    for private in ("Able", "Alice", "/patients", "/studies", "data-call-end", "Sign out"):
        assert private not in html, private
    other = await accepted_consult(client, world)
    client.session.cookie_jar.clear()
    assert (await client.get(f"/consults/{other}", headers=_as_guest(cookie))).status == 404
    revoked = await client.delete(
        f"/api/v1/consults/{consult_id}/guests/{guest_id}", headers=world.auth("gp-a")
    )
    assert revoked.status in (200, 204), await revoked.text()
    client.session.cookie_jar.clear()
    gone = await client.get(f"/consults/{consult_id}", headers=_as_guest(cookie))
    assert gone.status == 410
    assert "withdrawn by the doctor" in await gone.text()


async def test_shared_views_never_reach_a_guest_nor_come_from_one(
    client: Client, world: World
) -> None:
    """`view` names the patient's studies: doctors share it; a guest neither gets nor sends it."""
    consult_id = await accepted_consult(client, world)
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    gp = await Signal.open(client, consult_id, world.auth("gp-a"))
    await gp.join("participant")
    await gp.next("lobby")
    await host.send("admit", peer=gp.peer)
    guest = await guest_signal(client, world, consult_id, "Patient at home")
    await host.send("admit", peer=guest.peer)
    await guest.peers_become(guest.peer, gp.peer, host.peer)
    await host.send("view", state={"study": "1.2.3", "frame": 4})
    assert (await gp.next("view"))["state"] == {"study": "1.2.3", "frame": 4}
    await host.send("chat", text="after the view")
    assert (await guest.next("chat"))["text"] == "after the view"
    assert [m for m in guest.seen if m["type"] == "view"] == []
    await guest.send("view", state={"study": "1.2.3"})
    assert (await guest.next("error"))["code"] == "not_allowed"
    for socket in (guest, gp, host):
        await socket.close()
