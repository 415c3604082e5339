"""Admin pages: organisations, users and kiosk devices; every write audited."""

from __future__ import annotations

import re

import pytest

from server import keys
from server.accounts import administration
from server.accounts import service as accounts
from server.identity import Actor
from tests.forms import csrf_meta, post_form, sign_in
from tests.support import PASSWORD, Client, World, audit_actions

ADMIN_PAGES = ("/admin/organisations", "/admin/users", "/admin/devices")


@pytest.mark.parametrize("username", ["gp-a", "cardio", "kiosk"])
async def test_only_admins_open_admin_pages(client: Client, world: World, username: str) -> None:
    csrf = await sign_in(client, username)
    for path in ADMIN_PAGES:
        response = await client.get(path)
        assert response.status == 403, path
        html = await response.text()
        assert "Not allowed" in html
        assert "admin accounts" in html
        # The error page still carries the session's token, so "Sign out" works from it.
        assert csrf_meta(html) == csrf
    status, _, _ = await post_form(
        client, "/admin/organisations", csrf, {"name": "Sneaky", "kind": "clinic"}
    )
    assert status == 403
    assert await audit_actions(client.app, "org.") == []


async def test_admin_writes_need_csrf(client: Client, world: World) -> None:
    await sign_in(client, "admin")
    status, html, _ = await post_form(
        client, "/admin/organisations", None, {"name": "No Token", "kind": "clinic"}
    )
    assert status == 403
    assert "CSRF" in html
    status, _, _ = await post_form(client, "/admin/users/gp-a/disable", None)
    assert status == 403
    html = await (await client.get("/admin/organisations")).text()
    assert "No Token" not in html


async def test_create_organisation(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, _, location = await post_form(
        client,
        "/admin/organisations",
        csrf,
        {"name": "Seaside Clinic", "kind": "clinic", "ae_title": "seaside"},
    )
    assert status == 303
    html = await (await client.get(location)).text()
    assert "Organisation “Seaside Clinic” created." in html
    assert "<code>SEASIDE</code>" in html
    assert ("org.create", "admin", "success") in await audit_actions(client.app, "org.create")
    # Duplicates and bad input come back as messages with the typed values.
    status, html, _ = await post_form(
        client, "/admin/organisations", csrf, {"name": "Seaside Clinic", "kind": "clinic"}
    )
    assert status == 409
    assert "exists" in html
    assert 'value="Seaside Clinic"' in html
    status, html, _ = await post_form(
        client, "/admin/organisations", csrf, {"name": "Odd", "kind": "clinic", "ae_title": "A*"}
    )
    assert status == 422
    assert "AE title must be" in html
    assert 'value="Odd"' in html
    status, html, _ = await post_form(
        client, "/admin/organisations", csrf, {"name": "Odd", "kind": "castle"}
    )
    assert status == 422
    assert "Choose the kind" in html
    assert len(await audit_actions(client.app, "org.create")) == 1


async def test_the_organisations_page_lists_dicom_peers(client: Client, world: World) -> None:
    recorder = client.app[keys.AUDIT].recorder(Actor(user_id=None, username="test", org_id=None))
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        clinic_a = await accounts.get_org_by_name(session=session, name="clinic-a")
        await administration.update_organisation(
            session=session,
            audit=recorder,
            org=clinic_a,
            ae_title="CLINIC_A",
            add_dicom_peers=["192.0.2.0/24", "2001:db8::7"],
            dicom_cert_sha256="ab" * 32,
        )
        clinic_b = await accounts.get_org_by_name(session=session, name="clinic-b")
        await administration.update_organisation(
            session=session, audit=recorder, org=clinic_b, ae_title="CLINIC_B"
        )
    await sign_in(client, "admin")
    html = await (await client.get("/admin/organisations")).text()
    row_a = html[html.index(">clinic-a<") : html.index("</tr>", html.index(">clinic-a<"))]
    assert "<code>192.0.2.0/24</code>, <code>2001:db8::7/128</code>" in row_a
    assert "TLS certificate abababababababab…" in row_a
    row_b = html[html.index(">clinic-b<") : html.index("</tr>", html.index(">clinic-b<"))]
    assert "loopback only" in row_b
    assert [action for action, _, _ in await audit_actions(client.app, "org.")] == [
        "org.update",
        "org.update",
    ]


async def test_create_user_and_sign_in(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    fields: dict[str, str | list[str]] = {
        "username": "dr.lung",
        "display_name": "Dr Lena Lung",
        "role": "specialist",
        "org_id": str(world.orgs["hospital"]),
        "specialties": ["pulmonology", "radiology"],
        "password": "a long enough password",
    }
    status, _, location = await post_form(client, "/admin/users", csrf, fields)
    assert status == 303, location
    html = await (await client.get(location)).text()
    assert "User “dr.lung” created." in html
    assert "Pulmonology, Radiology" in html or "Radiology, Pulmonology" in html
    assert ("user.create", "admin", "success") in await audit_actions(client.app, "user.create")
    client.session.cookie_jar.clear()
    await sign_in(client, "dr.lung", "a long enough password")
    assert "Pulmonology" in await (await client.get("/")).text()


async def test_create_user_errors_keep_values(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    fields: dict[str, str | list[str]] = {
        "username": "gp.new",
        "display_name": "Dr New",
        "role": "gp",
        "org_id": str(world.orgs["hospital"]),
        "specialties": ["cardiology"],
        "password": "a long enough password",
    }
    status, html, _ = await post_form(client, "/admin/users", csrf, fields)
    assert status == 422
    assert "Only specialists have specialties." in html or "cannot belong" in html
    assert 'value="gp.new"' in html
    assert 'value="Dr New"' in html
    assert 'name="specialties" value="cardiology" checked>' in html
    assert 'name="specialties" value="radiology">' in html
    assert re.search(rf'<option value="{world.orgs["hospital"]}" selected>', html)
    assert "a long enough password" not in html  # passwords are never echoed
    status, html, _ = await post_form(
        client, "/admin/users", csrf, {**fields, "specialties": [], "password": "short"}
    )
    assert status == 422
    assert "cannot belong to a hospital" in html
    status, html, _ = await post_form(
        client,
        "/admin/users",
        csrf,
        {**fields, "specialties": [], "org_id": str(world.orgs["clinic-a"]), "password": "short"},
    )
    assert status == 422
    assert "at least 10 characters" in html
    status, html, _ = await post_form(
        client,
        "/admin/users",
        csrf,
        {**fields, "username": "gp-a", "specialties": [], "org_id": str(world.orgs["clinic-a"])},
    )
    assert status == 409
    assert "exists" in html
    assert await audit_actions(client.app, "user.create") == []


async def test_disable_and_enable_user(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, _, location = await post_form(client, "/admin/users/gp-b/disable", csrf)
    assert (status, location) == (303, f"/admin/users?changed={world.users['gp-b']}")
    html = await (await client.get(location)).text()
    assert "User “gp-b” is now disabled." in html
    # Disabled: the token is revoked and the password no longer signs in.
    assert (await client.get("/api/v1/me", headers=world.auth("gp-b"))).status == 401
    status, _, _ = await post_form(client, "/admin/users/gp-b/enable", csrf)
    assert status == 303
    actions = [a for a, _, _ in await audit_actions(client.app, "user.")]
    assert actions == ["user.disable", "user.enable"]
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-b", PASSWORD)


async def test_admin_cannot_disable_self_or_unknown(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, html, _ = await post_form(client, "/admin/users/admin/disable", csrf)
    assert status == 422
    assert "your own account" in html
    status, html, _ = await post_form(client, "/admin/users/nobody/disable", csrf)
    assert status == 404
    assert (await client.get("/api/v1/me")).status == 200


def _token(html: str) -> str:
    found = re.search(r'<code id="device-token" class="token">(dst_[^<]+)</code>', html)
    assert found is not None
    return found.group(1)


async def test_enrol_device_token_shown_once_and_revocable(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, html, _ = await post_form(
        client,
        "/admin/devices",
        csrf,
        {
            "username": "kiosk.pier",
            "display_name": "Pier kiosk",
            "org_id": str(world.orgs["corner"]),
            "expires_days": "30",
        },
    )
    assert status == 201
    assert "Device enrolled" in html
    assert "shown only once" in html
    token = _token(html)
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert (await me.json())["role"] == "kiosk"

    listing = await (await client.get("/admin/devices")).text()
    assert "Pier kiosk" in listing
    assert "kiosk.pier" in listing
    assert token not in listing  # never shown again
    token_ids = re.findall(r'action="/admin/tokens/(\d+)/revoke"', listing)
    assert token_ids

    audit = await audit_actions(client.app, "device.enrol")
    assert audit == [("device.enrol", "admin", "success")]

    pier_id = max(int(t) for t in token_ids)
    status, _, location = await post_form(client, f"/admin/tokens/{pier_id}/revoke", csrf)
    assert (status, location) == (303, f"/admin/devices?revoked={pier_id}")
    assert "revoked; it no longer works" in await (await client.get(location)).text()
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401
    assert [a for a, _, _ in await audit_actions(client.app, "token.")] == ["token.revoke"]

    # A replacement token for the same device, again shown once.
    status, html, _ = await post_form(client, "/admin/devices/kiosk.pier/tokens", csrf)
    assert status == 201
    assert "New token issued" in html
    fresh = _token(html)
    assert fresh != token
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"})
    assert me.status == 200


async def test_enrol_device_errors(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    base = {"username": "kiosk.x", "org_id": str(world.orgs["hospital"]), "expires_days": "30"}
    status, html, _ = await post_form(client, "/admin/devices", csrf, base)
    assert status == 422
    assert "cannot belong to a hospital" in html
    assert 'value="kiosk.x"' in html
    status, html, _ = await post_form(
        client,
        "/admin/devices",
        csrf,
        {**base, "org_id": str(world.orgs["corner"]), "expires_days": "0"},
    )
    assert status == 422
    assert "1 to 3650 days" in html
    status, html, _ = await post_form(
        client,
        "/admin/devices",
        csrf,
        {**base, "org_id": str(world.orgs["corner"]), "expires_days": "soon"},
    )
    assert status == 422
    assert "whole number of days" in html
    status, html, _ = await post_form(client, "/admin/devices/gp-a/tokens", csrf)
    assert status == 422
    assert "only for kiosk devices" in html
    status, html, _ = await post_form(client, "/admin/tokens/999999/revoke", csrf)
    assert status == 404
    assert await audit_actions(client.app, "device.") == []
    assert await audit_actions(client.app, "token.") == []


async def test_devices_page_lists_seeded_kiosk(client: Client, world: World) -> None:
    await sign_in(client, "admin")
    html = await (await client.get("/admin/devices")).text()
    assert "1 device" in html
    assert "kiosk" in html
    assert "corner" in html
    assert "1 working token" in html
    # Only corners and clinics are offered as a device location.
    options = re.findall(r'<option value="(\d+)"', html.split('id="f-org_id"')[1])
    assert set(options) == {str(world.orgs[n]) for n in ("corner", "clinic-a", "clinic-b")}
