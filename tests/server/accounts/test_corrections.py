"""Administrators correct accounts: name, role and specialties, a password reset, organisations."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.forms import post_form, sign_in
from tests.support import PASSWORD, Client, World, audit_actions, audit_events

EVIL = '<script>alert("x")</script>'
_TEMPORARY = re.compile(r'<code id="temporary-password" class="token">([^<]+)</code>')


async def _details(client: Client, action: str) -> list[dict[str, Any]]:
    return [json.loads(e.details) for e in await audit_events(client.app, action)]


async def _other_client(client: Client) -> Client:
    """A second browser on the same, running server, with cookies of its own.

    Close it with `other.session.close()`: closing the client would stop the server.
    """
    other: Client = TestClient(client.server)
    return other


# Name, role and specialties ---------------------------------------------------------


async def test_edit_a_users_name_role_and_specialties(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    listing = await (await client.get("/admin/users")).text()
    assert 'href="/admin/users/cardio"' in listing
    page = await (await client.get("/admin/users/cardio")).text()
    assert 'name="specialties" value="cardiology" checked>' in page
    assert '<option value="specialist" selected>' in page
    assert '<option value="kiosk"' not in page  # people do not become devices
    fields = {
        "display_name": "Dr Carla Dio",
        "role": "specialist",
        "specialties": ["cardiology", "pulmonology"],
    }
    status, _, location = await post_form(client, "/admin/users/cardio", csrf, fields)
    assert (status, location) == (303, "/admin/users/cardio?saved=1")
    page = await (await client.get(location)).text()
    assert "Changes saved." in page
    assert "Dr Carla Dio" in page
    assert 'name="specialties" value="pulmonology" checked>' in page
    me = await (await client.get("/api/v1/me", headers=world.auth("cardio"))).json()
    assert (me["display_name"], me["specialties"]) == (
        "Dr Carla Dio",
        ["cardiology", "pulmonology"],
    )
    assert await _details(client, "user.update") == [
        {
            "username": "cardio",
            "before": {"display_name": "cardio", "specialties": ["cardiology"]},
            "after": {"display_name": "Dr Carla Dio", "specialties": ["cardiology", "pulmonology"]},
        }
    ]
    # Saving it unchanged records nothing.
    status, _, _ = await post_form(client, "/admin/users/cardio", csrf, fields)
    assert status == 303
    assert len(await audit_events(client.app, "user.update")) == 1


async def test_a_role_change_reaches_the_users_token_at_once(client: Client, world: World) -> None:
    me = await client.get("/api/v1/me", headers=world.auth("gp-a"))
    assert (await me.json())["role"] == "gp"  # now cached in this process
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(
        client, "/admin/users/gp-a", csrf, {"display_name": "Dr A", "role": "admin"}
    )
    assert status == 303
    me = await client.get("/api/v1/me", headers=world.auth("gp-a"))
    assert (await me.json())["role"] == "admin"
    listing = await client.get("/api/v1/patients", headers=world.auth("gp-a"))
    assert await listing.json() == []  # an administrator reads no patient data
    assert [d["after"] for d in await _details(client, "user.update")] == [
        {"display_name": "Dr A", "role": "admin"}
    ]


async def test_the_rules_of_a_new_account_still_apply(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    cases = [
        ("gp-a", {"role": "specialist"}, 422, "cannot belong to a clinic"),
        ("gp-a", {"role": "gp", "specialties": ["cardiology"]}, 422, "Only specialists"),
        ("cardio", {"role": "specialist", "specialties": ["astrology"]}, 422, "Unknown specialty"),
        ("gp-a", {"role": "kiosk"}, 422, "devices page"),
        ("kiosk", {"role": "gp"}, 422, "devices page"),
        ("gp-a", {"role": "wizard"}, 422, "Choose a role."),
        ("admin", {"role": "gp"}, 422, "your own role"),
        ("gp-a", {"role": "gp", "display_name": "x" * 129}, 422, "at most 128"),
    ]
    for username, fields, status, message in cases:
        got, html, _ = await post_form(client, f"/admin/users/{username}", csrf, fields)
        assert (got, message in html) == (status, True), (username, fields, got)
    got, _, _ = await post_form(client, "/admin/users/nobody", csrf, {"role": "gp"})
    assert got == 404
    got, _, _ = await post_form(client, "/admin/users/gp-a", None, {"role": "admin"})
    assert got == 403
    assert await audit_actions(client.app, "user.update") == []
    me = await (await client.get("/api/v1/me", headers=world.auth("gp-a"))).json()
    assert me["role"] == "gp"


async def test_hostile_display_names_are_escaped(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(
        client, "/admin/users/gp-b", csrf, {"display_name": EVIL, "role": "gp"}
    )
    assert status == 303
    for path in ("/admin/users", "/admin/users/gp-b", "/admin/audit"):
        html = await (await client.get(path)).text()
        assert EVIL not in html, path
        assert "&lt;script&gt;" in html, path


async def test_only_admins_correct_accounts(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    for path in ("/admin/users/gp-b", f"/admin/organisations/{world.orgs['clinic-b']}"):
        assert (await client.get(path)).status == 403
    for path in (
        "/admin/users/gp-b",
        "/admin/users/gp-b/password",
        f"/admin/organisations/{world.orgs['clinic-b']}",
    ):
        status, _, _ = await post_form(client, path, csrf, {"role": "admin", "name": "X"})
        assert status == 403, path
    assert await audit_actions(client.app, "user.") == []
    assert await audit_actions(client.app, "org.") == []


# Password reset ---------------------------------------------------------------------


async def test_a_password_reset_gives_a_temporary_password_once(
    client: Client, world: World
) -> None:
    gp = await _other_client(client)
    try:
        await sign_in(gp, "gp-a")
        csrf = await sign_in(client, "admin")
        status, html, _ = await post_form(client, "/admin/users/gp-a/password", csrf)
        assert status == 200
        found = _TEMPORARY.search(html)
        assert found is not None
        temporary = found.group(1)
        assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", temporary)
        assert "shown only once" in html
        # The account page never shows it again; the reset is audited without it.
        page = await (await client.get("/admin/users/gp-a")).text()
        assert temporary not in page
        assert "Temporary password" in page
        events = await audit_events(client.app, "user.password_reset")
        assert [(e.actor, e.object_id) for e in events] == [("admin", str(world.users["gp-a"]))]
        assert json.loads(events[0].details) == {"username": "gp-a", "temporary": True}
        assert temporary not in "".join(e.details for e in await audit_events(client.app))
        # gp-a's open session has ended; the old password no longer works.
        response = await gp.get("/patients", allow_redirects=False)
        assert response.status in (302, 303)
        assert response.headers["Location"].startswith("/login")
        login = await gp.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]*)"', await login.text())
        assert token is not None
        refused = await gp.post(
            "/login",
            data={"username": "gp-a", "password": PASSWORD, "login_csrf": token.group(1)},
            allow_redirects=False,
        )
        assert refused.status == 401
        # Bearer tokens are other credentials: they keep working.
        assert (await client.get("/api/v1/me", headers=world.auth("gp-a"))).status == 200
    finally:
        await gp.session.close()


async def test_the_temporary_password_must_be_replaced_first(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    status, html, _ = await post_form(client, "/admin/users/gp-a/password", csrf)
    found = _TEMPORARY.search(html)
    assert status == 200
    assert found is not None
    temporary = found.group(1)
    client.session.cookie_jar.clear()
    csrf = await _sign_in_temporary(client, temporary)
    # Every page leads to the password page, the API refuses; signing out still works.
    for path in ("/", "/patients", f"/patients/{world.patients['alice']}"):
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers.get("Location")) == (303, "/account/password")
    api = await client.get("/api/v1/patients")
    assert api.status == 403
    assert "temporary password" in (await api.json())["error"]["message"]
    assert (await client.get("/api/v1/me")).status == 200
    page = await (await client.get("/account/password")).text()
    assert "Choose your own password" in page
    # Mistakes are explained.
    new = "my own secret phrase"
    cases = [
        ({"current": "wrong", "new": new, "repeat": new}, "not right"),
        ({"current": temporary, "new": new, "repeat": new + "x"}, "differ"),
        ({"current": temporary, "new": "short", "repeat": "short"}, "at least 10"),
        ({"current": temporary, "new": temporary, "repeat": temporary}, "other than the current"),
        ({"current": "", "new": new, "repeat": new}, "Enter your current password"),
    ]
    for fields, message in cases:
        status, html, _ = await post_form(client, "/account/password", csrf, fields)
        assert (status, message in html) == (422, True), fields
        assert new not in html
    status, _, location = await post_form(
        client, "/account/password", csrf, {"current": temporary, "new": new, "repeat": new}
    )
    assert (status, location) == (303, "/account/password?changed=1")
    assert "Password changed." in await (await client.get(location)).text()
    assert (await client.get("/patients")).status == 200
    assert [o for _, _, o in await audit_actions(client.app, "user.password_change")] == [
        "failure",
        "success",
    ]
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a", new)


async def _sign_in_temporary(client: Client, password: str) -> str:
    form = await client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]*)"', await form.text())
    assert token is not None
    response = await client.post(
        "/login",
        data={"username": "gp-a", "password": password, "login_csrf": token.group(1), "next": "/"},
        allow_redirects=False,
    )
    assert response.status == 303
    page = await client.get("/account/password")
    found = re.search(r'<meta name="csrf-token" content="([^"]*)">', await page.text())
    assert found is not None
    return found.group(1)


async def test_anyone_changes_their_own_password(client: Client, world: World) -> None:
    other = await _other_client(client)
    try:
        await sign_in(other, "cardio")
        csrf = await sign_in(client, "cardio")
        new = "a brand new passphrase"
        status, _, _ = await post_form(
            client, "/account/password", csrf, {"current": PASSWORD, "new": new, "repeat": new}
        )
        assert status == 303
        # This session goes on; the other one has ended.
        assert (await client.get("/")).status == 200
        response = await other.get("/", allow_redirects=False)
        assert response.status in (302, 303)
    finally:
        await other.session.close()
    client.session.cookie_jar.clear()
    await sign_in(client, "cardio", new)
    assert 'href="/account/password"' in await (await client.get("/")).text()


async def test_a_reset_unlocks_and_is_refused_for_devices_and_oneself(
    client: Client, world: World
) -> None:
    for _ in range(6):  # pause gp-b's sign-in from here
        form = await client.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]*)"', await form.text())
        assert token is not None
        await client.post(
            "/login", data={"username": "gp-b", "password": "wrong", "login_csrf": token.group(1)}
        )
    csrf = await sign_in(client, "admin")
    assert "Sign-in paused" in await (await client.get("/admin/users/gp-b")).text()
    status, html, _ = await post_form(client, "/admin/users/gp-b/password", csrf)
    assert status == 200
    assert "Sign-in paused" not in await (await client.get("/admin/users/gp-b")).text()
    status, html, _ = await post_form(client, "/admin/users/kiosk/password", csrf)
    assert (status, "issue the device a new token" in html) == (422, True)
    status, html, _ = await post_form(client, "/admin/users/admin/password", csrf)
    assert (status, "your account page" in html) == (422, True)
    status, _, _ = await post_form(client, "/admin/users/nobody/password", csrf)
    assert status == 404
    assert len(await audit_events(client.app, "user.password_reset")) == 1


# Organisations ----------------------------------------------------------------------


async def test_edit_an_organisation(client: Client, world: World) -> None:
    clinic = world.orgs["clinic-a"]
    csrf = await sign_in(client, "admin")
    listing = await (await client.get("/admin/organisations")).text()
    assert f'href="/admin/organisations/{clinic}"' in listing
    page = await (await client.get(f"/admin/organisations/{clinic}")).text()
    assert 'value="clinic-a"' in page
    assert '<option value="clinic" selected>' in page
    fields = {"name": "Riverside Clinic", "kind": "clinic", "ae_title": "riverside"}
    status, _, location = await post_form(client, f"/admin/organisations/{clinic}", csrf, fields)
    assert (status, location) == (303, f"/admin/organisations/{clinic}?saved=1")
    page = await (await client.get(location)).text()
    assert "Changes saved." in page
    assert "<code>RIVERSIDE</code>" in page
    me = await (await client.get("/api/v1/me", headers=world.auth("gp-a"))).json()
    assert me["organisation"]["name"] in ("Riverside Clinic", "clinic-a")  # cached up to 10 s
    events = await audit_events(client.app, "org.update")
    assert [(e.actor, e.object_id, e.org_id) for e in events] == [("admin", str(clinic), clinic)]
    assert json.loads(events[0].details) == {
        "before": {"name": "clinic-a", "ae_title": None},
        "after": {"name": "Riverside Clinic", "ae_title": "RIVERSIDE"},
    }


async def test_organisation_corrections_keep_the_rules(client: Client, world: World) -> None:
    clinic, corner = world.orgs["clinic-a"], world.orgs["corner"]
    csrf = await sign_in(client, "admin")
    status, _, _ = await post_form(
        client,
        f"/admin/organisations/{corner}",
        csrf,
        {"name": "corner", "kind": "corner", "ae_title": "CORNER1"},
    )
    assert status == 303
    base = {"name": "clinic-a", "kind": "clinic", "ae_title": ""}
    cases = [
        ({**base, "name": "clinic-b"}, 409, "exists"),
        ({**base, "ae_title": "corner1"}, 409, "AE title"),
        ({**base, "ae_title": "BAD*"}, 422, "AE title must be"),
        ({**base, "name": " "}, 422, "1 to 128"),
        ({**base, "kind": "hospital"}, 422, "cannot have gp accounts"),
        ({**base, "kind": "castle"}, 422, "Choose the kind"),
    ]
    for fields, expected, message in cases:
        status, html, _ = await post_form(client, f"/admin/organisations/{clinic}", csrf, fields)
        assert (status, message in html) == (expected, True), fields
        assert f'value="{fields["name"]}"' in html or not fields["name"].strip()
    # A kind that fits every member is fine: the corner's kiosk may belong to a clinic.
    status, _, _ = await post_form(
        client,
        f"/admin/organisations/{corner}",
        csrf,
        {"name": "corner", "kind": "clinic", "ae_title": "CORNER1"},
    )
    assert status == 303
    assert (await client.get("/admin/organisations/999999")).status == 404
    assert [d["after"] for d in await _details(client, "org.update")] == [
        {"ae_title": "CORNER1"},
        {"kind": "clinic"},
    ]


async def test_hostile_organisation_names_are_escaped(client: Client, world: World) -> None:
    csrf = await sign_in(client, "admin")
    clinic = world.orgs["clinic-b"]
    status, _, _ = await post_form(
        client, f"/admin/organisations/{clinic}", csrf, {"name": EVIL, "kind": "clinic"}
    )
    assert status == 303
    for path in ("/admin/organisations", f"/admin/organisations/{clinic}", "/admin/users"):
        html = await (await client.get(path)).text()
        assert EVIL not in html, path
        assert "&lt;script&gt;" in html, path
