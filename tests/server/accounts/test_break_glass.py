"""Administrators read no patient data; break-glass opens one organisation's, reasoned and timed."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import update

from server import keys
from server.accounts import administration
from server.accounts import service as accounts
from server.accounts.models import BreakGlassGrant
from server.db import transaction, utcnow
from server.identity import Actor, Role
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.forms import post_form, sign_in
from tests.support import PASSWORD, Client, World, audit_events, store

REASON = "Patient collapsed in A&E, history needed now"


async def _clinic_admin(client: Client, world: World) -> dict[str, str]:
    """An administrator account of clinic A itself, with a bearer token."""
    audit = client.app[keys.AUDIT].recorder(Actor(None, "test", None))
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        org = await accounts.get_org_by_name(session=session, name="clinic-a")
        user = await administration.create_user(
            session=session,
            audit=audit,
            username="admin-a",
            org=org,
            role=Role.ADMIN,
            password=PASSWORD,
        )
        issued = await administration.issue_token(
            session=session, audit=audit, user=user, label="test", expires_days=1
        )
    return {"Authorization": f"Bearer {issued.token}"}


async def test_an_administrator_reads_no_patient_data_not_even_their_own_clinics(
    client: Client, world: World
) -> None:
    await store(client.app, world.orgs["clinic-a"], [part10(dataset())])
    headers = await _clinic_admin(client, world)
    listing = await client.get("/api/v1/patients", headers=headers)
    assert (listing.status, await listing.json()) == (200, [])
    alice = await client.get(f"/api/v1/patients/{world.patients['alice']}", headers=headers)
    assert alice.status == 404
    studies = await client.get("/dicom-web/studies", headers=headers)
    assert studies.status in (200, 204)
    assert studies.status == 204 or await studies.json() == []
    retrieve = await client.get(f"/dicom-web/studies/{STUDY_UID}/metadata", headers=headers)
    assert retrieve.status == 404
    # The clinic's GP still sees both.
    gp = await client.get(f"/api/v1/patients/{world.patients['alice']}", headers=world.auth("gp-a"))
    assert gp.status == 200


async def _open(client: Client, world: World, csrf: str, **fields: str) -> tuple[int, str, str]:
    form = {"org_id": str(world.orgs["clinic-a"]), "reason": REASON, "minutes": "30", **fields}
    return await post_form(client, "/admin/break-glass", csrf, form)


async def test_break_glass_opens_one_organisation_until_ended(client: Client, world: World) -> None:
    alice, bella = world.patients["alice"], world.patients["bella"]
    admin = world.auth("admin")
    assert (await client.get(f"/api/v1/patients/{alice}", headers=admin)).status == 404
    csrf = await sign_in(client, "admin")
    status, _, location = await _open(client, world, csrf)
    assert status == 303
    assert location.startswith("/admin/break-glass?opened=")
    page = await (await client.get(location)).text()
    assert "Emergency access opened" in page
    assert "End now" in page

    assert (await client.get(f"/api/v1/patients/{alice}", headers=admin)).status == 200
    assert (await client.get(f"/api/v1/patients/{bella}", headers=admin)).status == 404
    [opened] = await audit_events(client.app, "break_glass.open")
    assert (opened.actor, opened.org_id) == ("admin", world.orgs["clinic-a"])
    assert json.loads(opened.details)["reason"] == REASON

    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    home = await (await client.get("/")).text()
    assert "Emergency access to your clinic" in home
    assert "A&amp;E" in home  # the reason, shown to the clinic (escaped)
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-b")
    assert "Emergency access" not in await (await client.get("/")).text()

    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "admin")
    grant_id = int(location.rsplit("=", 1)[1])
    status, _, location = await post_form(client, f"/admin/break-glass/{grant_id}/end", csrf)
    assert (status, location) == (303, "/admin/break-glass")
    assert (await client.get(f"/api/v1/patients/{alice}", headers=admin)).status == 404
    assert [e.actor for e in await audit_events(client.app, "break_glass.end")] == ["admin"]


async def test_break_glass_expires_by_itself(client: Client, world: World) -> None:
    alice = world.patients["alice"]
    csrf = await sign_in(client, "admin")
    assert (await _open(client, world, csrf, minutes="1"))[0] == 303
    assert (
        await client.get(f"/api/v1/patients/{alice}", headers=world.auth("admin"))
    ).status == 200
    async with transaction(client.app[keys.SESSIONMAKER]) as session:
        await session.execute(
            update(BreakGlassGrant).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (
        await client.get(f"/api/v1/patients/{alice}", headers=world.auth("admin"))
    ).status == 404
    page = await (await client.get("/admin/break-glass")).text()
    assert "End now" not in page
    assert "ended" in page


async def test_break_glass_needs_a_reason_a_limit_and_an_administrator(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "admin")
    status, html, _ = await _open(client, world, csrf, reason="because")
    assert status == 422
    assert "Give the reason" in html
    assert "because" in html  # the form keeps what was typed
    status, html, _ = await _open(client, world, csrf, minutes="600")
    assert status == 422
    assert "1 to 240 minutes" in html
    status, html, _ = await _open(client, world, csrf, minutes="soon")
    assert status == 422
    assert await audit_events(client.app, "break_glass.open") == []
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "gp-a")
    status, _, _ = await _open(client, world, csrf)
    assert status == 403
    assert re.search(r"for admin accounts", await (await client.get("/admin/break-glass")).text())
