"""The main pages of every role, rendered by the real application, for checks across pages."""

from __future__ import annotations

from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.forms import Client, post_form, sign_in
from tests.server.dicomweb.helpers import stow
from tests.support import PASSWORD, World


async def main_pages(client: Client, world: World) -> dict[str, str]:
    """'role path' -> HTML of each role's pages (with a stored study and an enrolled device)."""
    stored = await stow(client, world, "gp-a", [part10(dataset())])
    assert stored.status == 200, await stored.text()
    request_id, report_id = await _a_signed_and_a_claimed_request(client, world)
    consult_id = await _a_consult_offered_to_cardio(client, world)
    call_id = await _a_consult_offered_to_cardio(client, world)
    accepted = await client.post(f"/api/v1/consults/{call_id}/accept", headers=world.auth("cardio"))
    assert accepted.status == 200, await accepted.text()
    pages: dict[str, str] = {}
    client.session.cookie_jar.clear()
    pages["anonymous /login"] = await (await client.get("/login")).text()
    pages["anonymous /kiosk"] = await (await client.get("/kiosk")).text()
    paths = {
        "gp-a": [
            "/",
            "/patients",
            "/patients/new",
            f"/patients/{world.patients['alice']}",
            f"/patients/{world.patients['alice']}/edit",
            "/upload",
            "/account/password",
            "/studies",
            f"/studies/{STUDY_UID}",
            f"/studies/{STUDY_UID}/view",
            "/reports",
            f"/reports/{report_id}",
            "/reports/verify",
            "/consults",
            f"/consults/new?patient={world.patients['alice']}",
            f"/consults/{consult_id}/status",
            f"/consults/{consult_id}",
            f"/consults/{call_id}",
            "/consults/check",
        ],
        "cardio": [
            "/",
            "/patients",
            "/worklist",
            "/consults",
            f"/consults/{call_id}",
            "/consults/check",
            "/reports",
            f"/studies/{STUDY_UID}/view?request={request_id}",
        ],
        "kiosk": ["/", "/patients", "/kiosk"],
        "admin": [
            "/",
            "/admin/organisations",
            "/admin/users",
            "/admin/devices",
            "/admin/break-glass",
            "/admin/reading",
            "/admin/roster",
            "/admin/report-templates",
            "/admin/audit",
            "/admin/users/cardio",
            f"/admin/organisations/{world.orgs['clinic-a']}",
        ],
    }
    for username, user_paths in paths.items():
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, username)
        for path in user_paths:
            pages[f"{username} {path}"] = await (await client.get(path)).text()
        if username == "gp-a":
            status, html, _ = await post_form(client, "/patients/new", csrf, {"family": ""})
            assert status == 422
            pages["gp-a POST /patients/new"] = html
            status, html, _ = await post_form(
                client, "/consults", csrf, {"patient_id": str(world.patients["alice"])}
            )
            assert status == 422
            pages["gp-a POST /consults"] = html
        if username == "admin":
            status, html, _ = await post_form(
                client,
                "/admin/devices",
                csrf,
                {"username": "kiosk.css", "org_id": str(world.orgs["corner"]), "expires_days": "3"},
            )
            assert status == 201
            pages["admin POST /admin/devices"] = html
            status, html, _ = await post_form(client, "/admin/devices/kiosk/enrolment", csrf)
            assert status == 201
            pages["admin POST /admin/devices/kiosk/enrolment"] = html
            status, html, _ = await post_form(client, "/admin/users/gp-b/password", csrf)
            assert status == 200
            pages["admin POST /admin/users/gp-b/password"] = html
    return pages


async def _a_signed_and_a_claimed_request(client: Client, world: World) -> tuple[int, int]:
    """Two reading requests on the stored study: one signed by cardio, one claimed by cardio."""
    ids = []
    for _ in range(2):
        asked = await client.post(
            "/api/v1/reading-requests",
            json={"study_uid": STUDY_UID, "specialty": "cardiology"},
            headers=world.auth("gp-a"),
        )
        assert asked.status == 201, await asked.text()
        request_id = (await asked.json())["id"]
        ids.append(request_id)
        claimed = await client.post(
            f"/api/v1/reading-requests/{request_id}/claim", headers=world.auth("cardio")
        )
        assert claimed.status == 200
        saved = await client.put(
            f"/api/v1/reading-requests/{request_id}/report",
            json={"findings": "No acute findings.", "impression": "Normal."},
            headers=world.auth("cardio"),
        )
        assert saved.status == 200
    signed = await client.post(
        f"/api/v1/reading-requests/{ids[0]}/report/sign",
        json={"password": PASSWORD},
        headers=world.auth("cardio"),
    )
    assert signed.status == 201, await signed.text()
    return ids[1], (await signed.json())["report_id"]


async def _a_consult_offered_to_cardio(client: Client, world: World) -> int:
    """cardio on duty, and a cardiology consult on Alice offered to them."""
    duty = await client.put("/api/v1/duty", json={"on_duty": True}, headers=world.auth("cardio"))
    assert duty.status == 200, await duty.text()
    asked = await client.post(
        "/api/v1/consults",
        json={"patient_id": world.patients["alice"], "specialty": "cardiology", "reason": "Pain"},
        headers=world.auth("gp-a"),
    )
    assert asked.status == 201, await asked.text()
    consult_id: int = (await asked.json())["id"]
    return consult_id
