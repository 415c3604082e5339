"""The audit log viewer: filters, keyset pages, CSV export; reading the log is audited."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest

from server import keys
from server.audit import queries
from server.audit import service as audit_service
from server.db import transaction
from server.identity import Actor
from tests.forms import post_form, sign_in
from tests.support import Client, World, audit_events

_ROW = re.compile(r'<tr>\s*<td data-label="When">.*?#(\d+)</span>', re.S)
HOSTILE_LOGIN = '<img src=x onerror="alert(1)">'


def ids_on(html: str) -> list[int]:
    """The event ids listed on a page, in order."""
    return [int(n) for n in _ROW.findall(html)]


async def _activity(client: Client, world: World) -> None:
    """gp-a reads Alice, searches (Alice and Arthur listed), is refused Bella; gp-b reads Bella."""
    alice, bella = world.patients["alice"], world.patients["bella"]
    assert (await client.get(f"/api/v1/patients/{alice}", headers=world.auth("gp-a"))).ok
    assert (await client.get("/api/v1/patients?q=able", headers=world.auth("gp-a"))).ok
    denied = await client.get(f"/api/v1/patients/{bella}", headers=world.auth("gp-a"))
    assert denied.status == 404
    assert (await client.get(f"/api/v1/patients/{bella}", headers=world.auth("gp-b"))).ok
    arthur = world.patients["arthur"]
    assert (
        await client.get(f"/api/v1/patients/{arthur}", headers=world.auth("gp-b"))
    ).status == 404


async def _page(client: Client, **params: str) -> str:
    response = await client.get("/admin/audit", params=params)
    assert response.status == 200, await response.text()
    return await response.text()


async def _actions(client: Client, **params: str) -> list[tuple[str, str, str, str]]:
    """(action, actor, object id, outcome) of the events a filter shows, newest first."""
    ids = ids_on(await _page(client, **params))
    by_id = {e.id: e for e in await audit_events(client.app)}
    return [(by_id[i].action, by_id[i].actor, by_id[i].object_id, by_id[i].outcome) for i in ids]


async def test_only_administrators_read_the_log(client: Client, world: World) -> None:
    for username in ("gp-a", "cardio", "kiosk"):
        client.session.cookie_jar.clear()
        await sign_in(client, username)
        for path in ("/admin/audit", "/admin/audit.csv"):
            response = await client.get(path)
            assert response.status == 403, (username, path)
        assert "Audit log" not in await (await client.get("/")).text()
    client.session.cookie_jar.clear()
    response = await client.get("/admin/audit", allow_redirects=False)
    assert response.status in (302, 303, 401)
    api = await client.get("/admin/audit.csv", headers=world.auth("gp-a"))
    assert api.status == 403
    assert await audit_events(client.app, "audit.view") == []
    assert await audit_events(client.app, "audit.export") == []


async def test_who_read_patient_x_and_everything_user_y_did(client: Client, world: World) -> None:
    await _activity(client, world)
    alice, bella = str(world.patients["alice"]), str(world.patients["bella"])
    await sign_in(client, "admin")
    home = await (await client.get("/")).text()
    assert 'href="/admin/audit"' in home
    # Who read Alice: her record read, and the search whose results listed her.
    found = await _actions(client, object_type="patient", object_id=alice)
    assert [(a, who, o) for a, who, _, o in found] == [
        ("patient.search", "gp-a", "success"),
        ("patient.read", "gp-a", "success"),
    ]
    # Who tried Bella's: gp-b read her, gp-a was refused.
    found = await _actions(client, object_type="patient", object_id=bella)
    assert [(a, who, o) for a, who, _, o in found] == [
        ("patient.read", "gp-b", "success"),
        ("patient.read", "gp-a", "denied"),
    ]
    # An id is matched whole, alone or in a list, never as part of another id.
    recorder = client.app[keys.AUDIT].recorder(Actor(None, "lister", None))
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        for listed in (f"9{alice}", f"{alice}9,8", f"8,{alice}0", f"8,{alice},9", f"8,{alice}"):
            await recorder.record(
                session, action="test.list", object_type="patient", object_id=listed
            )
    found = await _actions(client, object_type="patient", object_id=alice, actor="lister")
    assert [oid for _, _, oid, _ in found] == [f"8,{alice}", f"8,{alice},9"]
    # Everything gp-b did.
    found = await _actions(client, actor="gp-b")
    assert [(a, o) for a, _, _, o in found] == [
        ("patient.read", "denied"),
        ("patient.read", "success"),
    ]
    # Action prefix, outcome and organisation.
    assert {a for a, *_ in await _actions(client, action="patient.")} == {
        "patient.read",
        "patient.search",
    }
    assert [who for _, who, _, _ in await _actions(client, outcome="denied")] == ["gp-b", "gp-a"]
    under_b = await _actions(client, org_id=str(world.orgs["clinic-b"]), action="patient.")
    assert [(a, who, o) for a, who, _, o in under_b] == [
        ("patient.read", "gp-b", "success"),
        ("patient.read", "gp-a", "denied"),
    ]


async def test_the_filters_combine_with_a_date_range(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _activity(client, world)
    await sign_in(client, "admin")
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    everything = await _actions(client, action="patient.")
    assert len(everything) == 5
    assert await _actions(client, action="patient.", since=today.isoformat()) == everything
    assert await _actions(client, action="patient.", until=today.isoformat()) == everything
    assert await _actions(client, action="patient.", since=tomorrow.isoformat()) == []
    assert await _actions(client, action="patient.", until=yesterday.isoformat()) == []
    # An event of last week: a range around it finds it alone.
    last_week = today - timedelta(days=7)
    then = datetime.combine(last_week, time(23, 59), UTC)
    monkeypatch.setattr(audit_service, "utcnow", lambda: then)
    recorder = client.app[keys.AUDIT].recorder(Actor(None, "late", None))
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        await recorder.record(session, action="patient.read", object_type="patient", object_id=1)
    monkeypatch.undo()
    found = await _actions(client, since=last_week.isoformat(), until=last_week.isoformat())
    assert [(a, who) for a, who, _, _ in found] == [("patient.read", "late")]
    day_after = (last_week + timedelta(days=1)).isoformat()
    assert await _actions(client, since=day_after, until=yesterday.isoformat()) == []


async def test_wrong_filters_are_explained(client: Client, world: World) -> None:
    await sign_in(client, "admin")
    response = await client.get(
        "/admin/audit",
        params={
            "since": "yesterday",
            "outcome": "maybe",
            "object_id": "17",
            "org_id": "x",
        },
    )
    assert response.status == 422
    html = await response.text()
    assert "Enter the date as YYYY-MM-DD." in html
    assert "Choose one of the outcomes." in html
    assert "Choose the kind of object" in html
    assert "Choose an organisation." in html
    assert 'value="yesterday"' in html
    reversed_range = await client.get(
        "/admin/audit", params={"since": "2026-02-02", "until": "2026-02-01"}
    )
    assert reversed_range.status == 422
    assert "before its start" in await reversed_range.text()


async def test_pages_of_fifty_newest_first(client: Client, world: World) -> None:
    recorder = client.app[keys.AUDIT].recorder(Actor(None, "bulk", None))
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        for n in range(123):
            await recorder.record(session, action="test.bulk", object_type="patient", object_id=n)
    await sign_in(client, "admin")
    bulk = [e.id for e in await audit_events(client.app, "test.bulk")]
    seen: list[int] = []
    params = {"actor": "bulk"}
    pages = 0
    while True:
        html = await _page(client, **params)
        ids = ids_on(html)
        pages += 1
        assert len(ids) <= queries.PAGE_SIZE
        seen += ids
        older = re.search(r'href="/admin/audit\?([^"]*)" rel="next"', html)
        if older is None:
            break
        query = dict(pair.split("=", 1) for pair in older.group(1).replace("&amp;", "&").split("&"))
        assert query["actor"] == "bulk"
        assert ("Newest events" in html) == (pages > 1)
        params = query
    assert pages == 3
    assert seen == sorted(bulk, reverse=True)
    # Viewing is audited with the filters and the page.
    views = [json.loads(e.details) for e in await audit_events(client.app, "audit.view")]
    assert [v["results"] for v in views] == [50, 50, 23]
    assert views[0] == {"filters": {"actor": "bulk"}, "before": None, "results": 50}
    assert views[1]["before"] == seen[49]
    assert {e.actor for e in await audit_events(client.app, "audit.view")} == {"admin"}


async def test_hostile_values_are_escaped(client: Client, world: World) -> None:
    # A failed sign-in records the username as typed; a search records the query.
    form = await client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]*)"', await form.text())
    assert token is not None
    await client.post(
        "/login",
        data={"username": HOSTILE_LOGIN, "password": "x", "login_csrf": token.group(1)},
    )
    search = await client.get(
        "/api/v1/patients", params={"q": "</code><script>x</script>"}, headers=world.auth("gp-a")
    )
    assert search.ok
    await sign_in(client, "admin")
    html = await _page(client)
    assert HOSTILE_LOGIN not in html
    assert "<script>x</script>" not in html
    assert "&lt;img src=x" in html
    html = await _page(client, actor='"><b>bold</b>')
    assert "<b>bold</b>" not in html


async def _csv(client: Client, **params: str) -> tuple[list[str], list[dict[str, str]]]:
    response = await client.get("/admin/audit.csv", params=params)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="doorstep-audit-'
    )
    body = (await response.read()).decode("utf-8")
    assert body.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(body[1:]))
    return list(reader.fieldnames or []), list(reader)


async def test_csv_export_with_the_same_filters(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "EXPORT_BATCH", 3)  # several batches, each its own transaction
    await _activity(client, world)
    await sign_in(client, "admin")
    alice = str(world.patients["alice"])
    columns, rows = await _csv(client, object_type="patient", object_id=alice)
    assert columns == list(queries.CSV_COLUMNS)
    assert [(r["action"], r["actor"], r["outcome"]) for r in rows] == [
        ("patient.search", "gp-a", "success"),
        ("patient.read", "gp-a", "success"),
    ]
    assert rows[1]["organisation"] == "clinic-a"
    assert rows[1]["object_id"] == alice
    assert json.loads(rows[0]["details"]) == {"q": "able", "results": 2}
    # Everything: as many rows as the log had when the export started, newest first.
    before = len(await audit_events(client.app))
    _, everything = await _csv(client)
    assert len(everything) == before
    assert [int(r["id"]) for r in everything] == sorted(
        (int(r["id"]) for r in everything), reverse=True
    )
    exports = await audit_events(client.app, "audit.export")
    assert [json.loads(e.details)["filters"] for e in exports] == [
        {"object_type": "patient", "object_id": alice},
        {},
    ]
    assert {e.actor for e in exports} == {"admin"}
    # The page links the export with its filters.
    html = await _page(client, actor="gp-a", outcome="denied")
    assert 'href="/admin/audit.csv?actor=gp-a&amp;outcome=denied"' in html


async def test_csv_cells_cannot_become_formulas(client: Client, world: World) -> None:
    for typed in ('=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)"):
        form = await client.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]*)"', await form.text())
        assert token is not None
        await client.post(
            "/login", data={"username": typed, "password": "x", "login_csrf": token.group(1)}
        )
    await sign_in(client, "admin")
    _, rows = await _csv(client, action="auth.login", outcome="failure")
    assert [r["object_id"] for r in rows] == [
        "'@SUM(A1)",
        "'-2+3",
        "'+1+2",
        '\'=HYPERLINK("http://x")',
    ]
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())
    assert queries.safe_cell("\t=1") == "'\t=1"
    assert queries.safe_cell("a=b") == "a=b"
    assert queries.safe_cell(None) == ""
    assert queries.safe_cell(-3) == "'-3"


async def test_wrong_filters_export_nothing(client: Client, world: World) -> None:
    await sign_in(client, "admin")
    response = await client.get("/admin/audit.csv", params={"since": "nope"})
    assert response.status == 422
    assert "text/html" in response.headers["Content-Type"]
    assert await audit_events(client.app, "audit.export") == []


async def test_the_viewer_needs_no_csrf_but_posts_are_refused(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(client, "/admin/audit", csrf, {})
    assert status == 405
