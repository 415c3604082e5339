"""GP upload page: zips member by member, photos as Secondary Capture, patient links, access."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from aiohttp import FormData
from PIL import Image
from sqlalchemy import select

from dicom_tools import secondary_capture
from dicom_tools.secondary_capture import PhotoError, PhotoPatient, photo_to_secondary_capture
from server import keys
from server.archive.models import Study
from server.audit.models import AuditEvent
from server.uploads import pages as upload_pages
from server.uploads import zips
from tests.dicom_tools.part10 import SOP_INSTANCE_UID, STUDY_UID, dataset, part10
from tests.forms import sign_in
from tests.server.dicomweb.helpers import blob_files, index_counts, multipart
from tests.support import Client, World, audit_events

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


ALICE = {0x00100010: b"Able^Alice"}  # as registered; her birth date and no Patient ID


def instance(n: int = 1, *, patient: dict[int, bytes] | None = None) -> bytes:
    """A small valid CT instance of Alice (name, birth date; no ID); n picks the SOP UID."""
    uid = f"{SOP_INSTANCE_UID}.{n}"
    replace = {0x00080018: uid.encode(), **(ALICE if patient is None else patient)}
    body = dataset(replace=replace, omit=(0x00100020,), extra={0x00100030: ("DA", b"19700101")})
    return part10(body, sop_instance_uid=uid)


def zipped(members: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of the members, written exactly with the given names."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def photo(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (180, 90, 60)).save(out, kind)
    return out.getvalue()


async def post_zip(
    client: Client, csrf: str | None, body: bytes, *, patient: int | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/zip"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    params = {"patient": str(patient)} if patient is not None else {}
    response = await client.post("/upload/zip", data=body, headers=headers, params=params)
    text = await response.text()
    return response.status, json.loads(text) if response.content_type.endswith("json") else text


async def post_photo(
    client: Client, csrf: str | None, image: bytes, *, patient: int | None, name: str = "a.png"
) -> tuple[int, Any]:
    form = FormData()
    if patient is not None:
        form.add_field("patient", str(patient))
    form.add_field("description", "Lesion, left forearm")
    form.add_field("image", image, filename=name, content_type="application/octet-stream")
    headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
    response = await client.post("/upload/photo", data=form, headers=headers)
    text = await response.text()
    return response.status, json.loads(text) if response.content_type.endswith("json") else text


def outcomes(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {r["name"]: (r["outcome"], r["reason"]) for r in body["results"]}


async def links(client: Client) -> list[tuple[str, dict[str, Any]]]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "study.patient_link")
        )
        return [(e.object_id, json.loads(e.details)) for e in rows]


@pytest.mark.parametrize("username", ["kiosk", "cardio", "admin"])
async def test_only_gps_upload(client: Client, world: World, username: str) -> None:
    csrf = await sign_in(client, username)
    assert (await client.get("/upload")).status == 403
    status, _ = await post_zip(client, csrf, zipped([("a.dcm", instance())]))
    assert status == 403
    status, _ = await post_photo(client, csrf, photo("PNG"), patient=world.patients["alice"])
    assert status == 403
    assert await index_counts(client) == (0, 0, 0)


async def test_page_offers_the_clinics_patients(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    response = await client.get("/upload", params={"patient": str(world.patients["arthur"])})
    html = await response.text()
    assert response.status == 200
    assert "ABLE, Alice · A-1 · born 1 Jan 1970" in html
    assert f'<option value="{world.patients["arthur"]}" selected>' in html
    assert "Brown" not in html
    assert "BROWN" not in html
    assert "webkitdirectory" in html
    other = await client.get("/upload", params={"patient": str(world.patients["bella"])})
    assert "Brown" not in await other.text()
    assert "BROWN" not in await other.text()
    assert 'data-module="upload"' in html
    assert " style=" not in html
    assert " onclick=" not in html


async def test_posts_need_the_csrf_token(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    status, _ = await post_zip(client, None, zipped([("a.dcm", instance())]))
    assert status == 403
    status, _ = await post_photo(client, None, photo("PNG"), patient=world.patients["alice"])
    assert status == 403
    response = await client.post(
        "/upload/link", json={"patient": world.patients["alice"], "studies": [STUDY_UID]}
    )
    assert response.status == 403
    status, _ = await post_photo(client, "wrong", photo("PNG"), patient=world.patients["alice"])
    assert status == 403
    assert await index_counts(client) == (0, 0, 0)


async def test_zip_members_get_their_own_results(
    client: Client, world: World, tmp_path: Path
) -> None:
    csrf = await sign_in(client, "gp-a")
    members = [
        ("study/one.dcm", instance(1)),
        ("study/again.dcm", instance(1)),
        ("../../x.dcm", instance(2)),
        ("/etc/abs.dcm", instance(3)),
        ("C:\\evil.dcm", instance(4)),
        ("notes.txt", b"not DICOM at all"),
        ("bomb.dcm", bytes(3 * 1024 * 1024)),
        ("__MACOSX/._one.dcm", b"resource fork"),
    ]
    body = zipped(members)
    status, answer = await post_zip(client, csrf, body, patient=world.patients["alice"])
    assert status == 200, answer
    found = outcomes(answer)
    assert found == {
        "study/one.dcm": ("stored", None),
        "study/again.dcm": ("duplicate", None),
        "../../x.dcm": ("rejected", "unsafe_name"),
        "/etc/abs.dcm": ("rejected", "unsafe_name"),
        "C:\\evil.dcm": ("rejected", "unsafe_name"),
        "notes.txt": ("rejected", "not_dicom"),
        "bomb.dcm": ("rejected", "zip_bomb"),
    }
    assert await index_counts(client) == (1, 1, 1)
    assert len(blob_files(client)) == 1
    # Names are never paths: nothing appears next to or above the data directory.
    assert not list(tmp_path.parent.rglob("x.dcm"))
    assert not list(tmp_path.parent.rglob("evil.dcm"))
    assert await links(client) == [
        (STUDY_UID, {"patient_id": world.patients["alice"], "source": "upload-zip"})
    ]
    [refused] = [e for e in await audit_events(client.app, "dicom.store") if e.object_type == "zip"]
    assert refused.outcome == "failure"
    assert json.loads(refused.details)["reasons"] == {"unsafe_name": 3, "zip_bomb": 1}


async def test_zip_limits(client: Client, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    csrf = await sign_in(client, "gp-a")
    monkeypatch.setattr(zips, "MAX_MEMBERS", 2)
    status, answer = await post_zip(
        client, csrf, zipped([(f"{n}.dcm", instance(n)) for n in range(1, 4)])
    )
    assert status == 200
    assert outcomes(answer) == {
        "1.dcm": ("stored", None),
        "2.dcm": ("stored", None),
        "3.dcm": ("rejected", "too_many_members"),
    }
    monkeypatch.setattr(zips, "MAX_UNCOMPRESSED_BYTES", len(instance(5)) + 10)
    status, answer = await post_zip(
        client, csrf, zipped([("5.dcm", instance(5)), ("6.dcm", instance(6))])
    )
    assert outcomes(answer) == {"5.dcm": ("stored", None), "6.dcm": ("rejected", "too_large")}
    # Far too many entries: refused before the central directory is parsed.
    monkeypatch.setattr(zips, "MAX_ENTRIES", 3)
    status, answer = await post_zip(client, csrf, zipped([(f"{n}/", b"") for n in range(4)]))
    assert status == 422
    assert answer["error"]["message"] == "The zip holds 4 entries; at most 3 are read."
    assert await index_counts(client) == (1, 1, 3)


async def test_bad_zip_requests(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    status, answer = await post_zip(client, csrf, b"PK\x03\x04 but not really a zip")
    assert status == 400
    assert answer["error"]["message"] == "The upload is not a readable zip archive."
    response = await client.post(
        "/upload/zip", data=b"x", headers={"X-CSRF-Token": csrf, "Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    status, answer = await post_zip(client, csrf, zipped([]))
    assert status == 422
    status, answer = await post_zip(
        client, csrf, zipped([("a.dcm", instance())]), patient=world.patients["bella"]
    )
    assert status == 404
    assert await index_counts(client) == (0, 0, 0)


@pytest.mark.parametrize(("kind", "syntax"), [("JPEG", "1.2.840.10008.1.2.4.50"), ("PNG", None)])
async def test_photo_becomes_a_secondary_capture(
    client: Client, world: World, kind: str, syntax: str | None
) -> None:
    csrf = await sign_in(client, "gp-a")
    status, answer = await post_photo(
        client, csrf, photo(kind), patient=world.patients["alice"], name="lesion.bin"
    )
    assert status == 200, answer
    [result] = answer["results"]
    assert (result["name"], result["outcome"]) == ("lesion.bin", "stored")
    study = result["study_uid"]
    assert study.startswith("2.25.")
    response = await client.get(
        f"/dicom-web/studies/{study}",
        headers={
            **world.auth("gp-a"),
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*',
        },
    )
    assert response.status == 200
    body = await response.read()
    start = body.index(b"\r\n\r\n") + 4
    ds = pydicom.dcmread(io.BytesIO(body[start:]))
    assert ds.SOPClassUID == SC_CLASS
    assert str(ds.PatientName) == "Able^Alice"
    assert ds.PatientID == "A-1"
    assert ds.PatientBirthDate == "19700101"
    assert ds.ConversionType == "WSD"
    assert ds.Modality == "XC"
    assert ds.file_meta.TransferSyntaxUID == (syntax or "1.2.840.10008.1.2.1")
    assert ds.pixel_array.shape == (30, 40, 3)
    assert await links(client) == [  # linked on arrival by the identifier it carries
        (
            study,
            {"patient_id": world.patients["alice"], "source": "upload-photo", "by": "identifier"},
        )
    ]
    # Another clinic neither sees the study nor can attach photos to this clinic's patient.
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "gp-b")
    assert (await client.get(f"/studies/{study}")).status == 404
    status, _ = await post_photo(client, csrf, photo(kind), patient=world.patients["alice"])
    assert status == 404


async def test_bad_photos_get_a_clear_4xx(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = await sign_in(client, "gp-a")
    alice = world.patients["alice"]
    status, answer = await post_photo(
        client, csrf, b"MZ\x90\x00 pretend", patient=alice, name="x.jpg"
    )
    assert status == 415
    assert answer["error"]["message"] == "x.jpg is not a JPEG or PNG image."
    status, answer = await post_photo(client, csrf, b"\xff\xd8\xff broken", patient=alice)
    assert status == 422
    assert answer["error"]["message"].startswith("The JPEG file cannot be read")
    status, answer = await post_photo(client, csrf, photo("PNG"), patient=None)
    assert status == 422
    assert answer["error"]["message"] == "Choose the patient the photo belongs to."
    monkeypatch.setattr(upload_pages, "MAX_PHOTO_BYTES", 100)
    status, answer = await post_photo(client, csrf, photo("PNG") + bytes(200), patient=alice)
    assert status == 413
    assert await index_counts(client) == (0, 0, 0)


async def test_link_stow_studies_to_a_patient(client: Client, world: World) -> None:
    body, content_type = multipart([instance()])
    stored = await client.post(
        "/dicom-web/studies",
        data=body,
        headers={**world.auth("gp-a"), "Content-Type": content_type},
    )
    assert stored.status == 200
    csrf = await sign_in(client, "gp-a")
    headers = {"X-CSRF-Token": csrf}
    alice = world.patients["alice"]
    response = await client.post(
        "/upload/link",
        json={"patient": alice, "studies": [STUDY_UID, "1.2.3.4"]},
        headers=headers,
    )
    assert response.status == 200
    assert await response.json() == {"patient": alice, "linked": [STUDY_UID], "mismatches": []}
    bad = await client.post(
        "/upload/link", json={"patient": alice, "studies": ["../x"]}, headers=headers
    )
    assert bad.status == 422
    other = await client.post(
        "/upload/link",
        json={"patient": world.patients["bella"], "studies": [STUDY_UID]},
        headers=headers,
    )
    assert other.status == 404
    for huge in (2**63, -(2**63) - 1, 10**300, 0, -1, True):  # beyond BIGINT: was an HTML 500
        absent = await client.post(
            "/upload/link", json={"patient": huge, "studies": [STUDY_UID]}, headers=headers
        )
        assert absent.status == 422, huge
        assert (await absent.json())["error"]["code"] == "invalid"
    assert await links(client) == [(STUDY_UID, {"patient_id": alice, "source": "stow-rs"})]
    page = await client.get(f"/patients/{alice}")
    assert page.status == 200
    assert f'href="/studies/{STUDY_UID}"' in await page.text()
    arthur = await client.get(f"/patients/{world.patients['arthur']}")
    assert STUDY_UID not in await arthur.text()


async def test_a_link_never_reaches_another_clinics_copy_of_a_study(
    client: Client, world: World
) -> None:
    body, content_type = multipart([instance()])
    for username in ("gp-a", "gp-b"):
        stored = await client.post(
            "/dicom-web/studies",
            data=body,
            headers={**world.auth(username), "Content-Type": content_type},
        )
        assert stored.status == 200
    csrf = await sign_in(client, "gp-a")
    response = await client.post(
        "/upload/link",
        json={"patient": world.patients["alice"], "studies": [STUDY_UID]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = (
            await session.execute(
                select(Study.org_id, Study.linked_patient_id).order_by(Study.org_id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (world.orgs["clinic-a"], world.patients["alice"]),
        (world.orgs["clinic-b"], None),
    ]


def test_photo_conversion_strips_camera_metadata_and_applies_orientation() -> None:
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    patient = PhotoPatient(name="Able^Alice", patient_id="A-1", birth_date="19700101", sex="F")
    data = photo_to_secondary_capture(out.getvalue(), patient=patient)
    assert b"SecretCam" not in data
    assert b"Exif" not in data
    ds = pydicom.dcmread(io.BytesIO(data))
    assert (ds.Rows, ds.Columns) == (40, 20)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert ds.SOPInstanceUID != ds.StudyInstanceUID != ds.SeriesInstanceUID
    assert all(uid.startswith("2.25.") for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID))


def test_photo_conversion_flattens_alpha_and_refuses_pixel_bombs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patient = PhotoPatient(name="Able^Alice", patient_id="A-1", birth_date="19700101", sex="F")
    out = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(out, "PNG")
    ds = pydicom.dcmread(io.BytesIO(photo_to_secondary_capture(out.getvalue(), patient=patient)))
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.pixel_array[0, 0].tolist() == [255, 255, 255]
    monkeypatch.setattr(secondary_capture, "MAX_PIXELS", 15)
    with pytest.raises(PhotoError, match="4x4 pixels"):
        photo_to_secondary_capture(out.getvalue(), patient=patient)
    with pytest.raises(PhotoError, match="not a JPEG or PNG"):
        photo_to_secondary_capture(b"GIF89a", patient=patient)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=abc", b"garbage without any boundary"),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Disposition: form-data; "
            b'name="image"; filename="a.png"\r\n\r\n\x89PNG',
        ),
        ("multipart/form-data; boundary=abc", b"--abc--\r\n"),
    ],
)
async def test_malformed_photo_forms_get_a_4xx(
    client: Client, world: World, content_type: str, body: bytes
) -> None:
    csrf = await sign_in(client, "gp-a")
    response = await client.post(
        "/upload/photo",
        data=body,
        headers={"X-CSRF-Token": csrf, "Content-Type": content_type},
    )
    assert 400 <= response.status < 500, await response.text()
    assert "error" in await response.json()


async def test_files_naming_someone_else_are_linked_only_when_confirmed(
    client: Client, world: World
) -> None:
    jane = {0x00100010: b"Doe^Jane"}
    body, content_type = multipart([instance(patient=jane)])
    stored = await client.post(
        "/dicom-web/studies",
        data=body,
        headers={**world.auth("gp-a"), "Content-Type": content_type},
    )
    assert stored.status == 200
    csrf = await sign_in(client, "gp-a")
    alice = world.patients["alice"]
    asked = await client.post(
        "/upload/link",
        json={"patient": alice, "studies": [STUDY_UID]},
        headers={"X-CSRF-Token": csrf},
    )
    assert asked.status == 200
    assert await asked.json() == {
        "patient": alice,
        "linked": [],
        "mismatches": [
            {
                "patient": alice,
                "study_uid": STUDY_UID,
                "differences": [
                    {"attribute": "PatientName", "in_files": "Doe^Jane", "registered": "Able^Alice"}
                ],
            }
        ],
    }
    assert await links(client) == []
    confirmed = await client.post(
        "/upload/link",
        json={"patient": alice, "studies": [STUDY_UID], "confirm": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert (await confirmed.json())["linked"] == [STUDY_UID]
    [(linked_uid, details)] = await links(client)
    assert linked_uid == STUDY_UID
    assert details["confirmed_differences"][0]["in_files"] == "Doe^Jane"
    [event] = await audit_events(client.app, "study.patient_link")
    assert event.actor == "gp-a"  # who confirmed
    bad = await client.post(
        "/upload/link",
        json={"patient": alice, "studies": [STUDY_UID], "confirm": "yes"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status == 422


async def test_a_zip_naming_someone_else_reports_the_mismatch_and_links_nothing(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "gp-a")
    # Doe^Jane, ID P-0001, born 1999: nothing of it is Alice's.
    jane = part10(dataset(extra={0x00100030: ("DA", b"19991231")}))
    body = zipped([("a.dcm", jane)])
    status, answer = await post_zip(client, csrf, body, patient=world.patients["alice"])
    assert status == 200
    assert [r["outcome"] for r in answer["results"]] == ["stored"]
    [mismatch] = answer["mismatches"]
    assert {d["attribute"] for d in mismatch["differences"]} == {
        "PatientID",
        "PatientName",
        "PatientBirthDate",
    }
    assert await links(client) == []
