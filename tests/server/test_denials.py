"""Every denied attempt on another clinic's data leaves its audit event, even behind a 404.

A GP of clinic A tries each route that names clinic B's patient or study. The
answer looks like "no such thing" (404, or an empty search), and the attempt is
an audit event with outcome "denied" under clinic B, written in a transaction of
its own so that the error response's rollback cannot take it away.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.dicom_tools.part10 import SERIES_UID, SOP_INSTANCE_UID, STUDY_UID, dataset, part10
from tests.forms import sign_in
from tests.support import Client, World, audit_events, store

STUDY = f"/dicom-web/studies/{STUDY_UID}"
INSTANCE = f"{STUDY}/series/{SERIES_UID}/instances/{SOP_INSTANCE_UID}"
# (method, path, expected status, audited action, audited object)
API_PATHS = [
    ("GET", "/api/v1/patients/{bella}", 404, "patient.read", "{bella}"),
    ("PATCH", "/api/v1/patients/{bella}", 404, "patient.update", "{bella}"),
    ("GET", STUDY, 404, "dicom.retrieve", STUDY_UID),
    ("GET", f"{STUDY}/metadata", 404, "dicom.retrieve", STUDY_UID),
    ("GET", f"{STUDY}/thumbnail", 404, "dicom.retrieve", STUDY_UID),
    ("GET", f"{STUDY}/export", 404, "dicom.retrieve", STUDY_UID),
    ("GET", f"{STUDY}/series", 404, "dicom.search", STUDY_UID),
    ("GET", f"{STUDY}/instances", 404, "dicom.search", STUDY_UID),
    ("GET", f"{STUDY}/series/{SERIES_UID}/instances", 404, "dicom.search", SERIES_UID),
    ("GET", INSTANCE, 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"{INSTANCE}/metadata", 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"{INSTANCE}/frames/1", 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"{INSTANCE}/rendered", 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"{INSTANCE}/thumbnail", 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"/api/v1/ecg/{SOP_INSTANCE_UID}", 404, "dicom.retrieve", SOP_INSTANCE_UID),
    ("GET", f"/api/v1/ecg/{SOP_INSTANCE_UID}.svg", 404, "dicom.retrieve", SOP_INSTANCE_UID),
]
PAGE_PATHS = [
    ("GET", "/patients/{bella}", 404, "patient.read", "{bella}"),
    ("GET", "/patients/{bella}/edit", 404, "patient.read", "{bella}"),
    ("POST", "/patients/{bella}/edit", 404, "patient.read", "{bella}"),
    ("POST", f"/patients/{{bella}}/studies/{STUDY_UID}/unlink", 404, "patient.read", "{bella}"),
    ("GET", f"/studies/{STUDY_UID}", 404, "dicom.search", STUDY_UID),
    ("GET", "/upload?patient={bella}", 200, "patient.read", "{bella}"),
    ("POST", "/upload/link", 404, "patient.read", "{bella}"),
    ("POST", "/upload/zip?patient={bella}", 404, "patient.read", "{bella}"),
    ("POST", "/upload/photo", 404, "patient.read", "{bella}"),
    ("POST", "/upload/aecg?patient={bella}", 404, "patient.read", "{bella}"),
]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def _denials(client: Client, world: World, action: str, object_id: str) -> int:
    events = await audit_events(client.app, action)
    return sum(
        1
        for e in events
        if e.object_id == object_id
        and e.outcome == "denied"
        and e.actor == "gp-a"
        and e.org_id == world.orgs["clinic-b"]
    )


async def _attempt(
    client: Client, world: World, method: str, path: str, *, page: bool, csrf: str = ""
) -> int:
    bella = world.patients["bella"]
    if not page:
        body = {"sex": "M"} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=world.auth("gp-a"))
    elif path == "/upload/link":
        response = await client.post(
            path, json={"patient": bella, "studies": []}, headers={"X-CSRF-Token": csrf}
        )
    elif path.startswith("/upload/zip"):
        response = await client.post(
            path,
            data=b"PK\x05\x06" + bytes(18),
            headers={"Content-Type": "application/zip", "X-CSRF-Token": csrf},
        )
    elif path.startswith("/upload/aecg"):
        response = await client.post(
            path,
            data=b'<AnnotatedECG xmlns="urn:hl7-org:v3"/>',
            headers={"Content-Type": "application/xml", "X-CSRF-Token": csrf},
        )
    elif path == "/upload/photo":
        form = {"patient": str(bella), "image": io.BytesIO(_png())}
        response = await client.post(path, data=form, headers={"X-CSRF-Token": csrf})
    elif method == "POST":
        response = await client.post(path, data={"csrf_token": csrf, "family": "X"})
    else:
        response = await client.request(method, path)
    await response.read()
    return response.status


@pytest.mark.parametrize(("method", "template", "status", "action", "object_id"), API_PATHS)
async def test_a_denied_api_attempt_is_audited(
    client: Client,
    world: World,
    method: str,
    template: str,
    status: int,
    action: str,
    object_id: str,
) -> None:
    await store(client.app, world.orgs["clinic-b"], [part10(dataset())])
    bella = str(world.patients["bella"])
    path, target = template.format(bella=bella), object_id.format(bella=bella)
    before = await _denials(client, world, action, target)
    assert await _attempt(client, world, method, path, page=False) == status
    assert await _denials(client, world, action, target) == before + 1


@pytest.mark.parametrize(("method", "template", "status", "action", "object_id"), PAGE_PATHS)
async def test_a_denied_page_attempt_is_audited(
    client: Client,
    world: World,
    method: str,
    template: str,
    status: int,
    action: str,
    object_id: str,
) -> None:
    await store(client.app, world.orgs["clinic-b"], [part10(dataset())])
    csrf = await sign_in(client, "gp-a")
    bella = str(world.patients["bella"])
    path, target = template.format(bella=bella), object_id.format(bella=bella)
    before = await _denials(client, world, action, target)
    assert await _attempt(client, world, method, path, page=True, csrf=csrf) == status
    assert await _denials(client, world, action, target) == before + 1
