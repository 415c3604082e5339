"""STOW-RS: byte-identical round trips, per-instance failures, bad requests, nothing left over."""

from __future__ import annotations

import pydicom

from tests.dicom_tools.part10 import (
    DEFLATED,
    PIXEL_DATA,
    STUDY_UID,
    dataset,
    deflated_with_zeros,
    element,
    part10,
)
from tests.server.dicomweb.conftest import MAX_INFLATED_BYTES, MAX_INSTANCE_BYTES, MAX_STOW_BYTES
from tests.server.dicomweb.helpers import (
    blob_files,
    failures,
    index_counts,
    multipart,
    read_bundled,
    referenced,
    retrieve,
    stow,
)
from tests.support import Client, World, audit_events, sha256

# Transfer syntaxes of the bundled files; files sharing a SOP Instance UID go to different clinics.
ROUND_TRIP = {
    "gp-a": [
        "CT_small.dcm",  # explicit VR little endian
        "MR_small_implicit.dcm",  # implicit VR little endian
        "SC_rgb_small_odd_big_endian.dcm",  # explicit VR big endian
        "image_dfl.dcm",  # deflated
        "examples_ybr_color.dcm",  # JPEG baseline, 30 frames
        "JPEG-lossy.dcm",  # JPEG extended
        "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless
        "JPEG2000.dcm",  # JPEG 2000
        "waveform_ecg.dcm",  # 12-lead ECG
        "test-SR.dcm",  # structured report
    ],
    "gp-b": ["MR_small_jpeg_ls_lossless.dcm", "SC_rgb_rle_2frame.dcm"],  # JPEG-LS, RLE
    "radio": ["MR_small_jp2klossless.dcm"],  # JPEG 2000 lossless
}
AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'

MZ_STUB = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\xcc" * 50


def _url(data: bytes) -> str:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


async def test_bundled_files_round_trip_byte_identically(client: Client, world: World) -> None:
    for user, names in ROUND_TRIP.items():
        instances = [read_bundled(name) for name in names]
        response = await stow(client, world, user, instances)
        body = await response.json()
        assert response.status == 200, body
        assert response.content_type == "application/dicom+json"
        assert len(referenced(body)) == len(names)
        for name, data in zip(names, instances, strict=True):
            reply, parts = await retrieve(client, world, user, _url(data), Accept=AS_STORED)
            assert reply.status == 200, name
            assert [sha256(p) for _, p in parts] == [sha256(data)], name
            syntax = str(
                pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).file_meta[0x00020010].value
            )
            assert parts[0][0].startswith("application/dicom"), name
            assert syntax in parts[0][0], name
    assert len(blob_files(client)) == sum(len(n) for n in ROUND_TRIP.values())


async def test_executable_preamble_is_stored_zeroed(client: Client, world: World) -> None:
    original = read_bundled("CT_small.dcm")
    polyglot = MZ_STUB + bytes(128 - len(MZ_STUB)) + original[128:]
    response = await stow(client, world, "gp-a", [polyglot])
    assert response.status == 200
    _, parts = await retrieve(client, world, "gp-a", _url(original))
    assert parts[0][1] == bytes(128) + original[128:]
    (path,) = blob_files(client)
    assert path.read_bytes()[:2] == b"\x00\x00"


def _deflate_bomb() -> bytes:
    zeros = MAX_INFLATED_BYTES + 1024
    prefix = dataset(omit=(PIXEL_DATA,)) + element(0x00420011, "OB", b"", length=zeros)
    stream = deflated_with_zeros(prefix, zeros, element(PIXEL_DATA, "OB", b"\x00\x00"))
    return part10(stream, transfer_syntax=DEFLATED)


BAD_INSTANCES = {
    "not DICOM": (b"This is a text file, not a DICOM object.\n" * 10, 0xC000, "not_dicom"),
    "truncated": (read_bundled("CT_small.dcm")[:20000], 0xC000, "truncated"),
    "no SOP Instance UID": (part10(dataset(omit=(0x00080018,))), 0xA900, "missing_attribute"),
    "no Study Instance UID": (part10(dataset(omit=(0x0020000D,))), 0xA900, "missing_attribute"),
    "Study UID with ../": (
        part10(dataset(replace={0x0020000D: b"../../../etc/passwd"})),
        0xA900,
        "invalid_uid",
    ),
    "SOP UID with ../": (
        part10(dataset(replace={0x00080018: b"1.2/../../x"}), sop_instance_uid="1.2/../../x"),
        0xA900,
        "invalid_uid",
    ),
    "4 GB declared length": (
        part10(element(0x00080008, "UN", b"", length=0xFFFFFFF0) + dataset()),
        0xC000,
        "oversized_element",
    ),
    "deflate bomb": (_deflate_bomb(), 0xA700, "inflated_too_large"),
}


async def test_bad_instances_fail_one_by_one_and_leave_nothing(
    client: Client, world: World
) -> None:
    for label, (data, reason, code) in BAD_INSTANCES.items():
        response = await stow(client, world, "gp-a", [data])
        assert response.status == 409, label
        ((failure, comment),) = failures(await response.json())
        assert (failure, comment.split(":")[0]) == (reason, code), label
        assert blob_files(client) == [], label
        assert await index_counts(client) == (0, 0, 0), label
    refused = await audit_events(client.app, "dicom.store")
    assert [e.outcome for e in refused] == ["failure"] * len(BAD_INSTANCES)
    good = await stow(client, world, "gp-a", [read_bundled("CT_small.dcm")])
    assert good.status == 200  # the server keeps serving
    assert len(blob_files(client)) == 1


async def test_some_stored_some_failed_is_202(client: Client, world: World) -> None:
    good = read_bundled("CT_small.dcm")
    response = await stow(client, world, "gp-a", [b"garbage" * 40, good])
    body = await response.json()
    assert response.status == 202
    assert referenced(body) == [pydicom.dcmread(pydicom.filebase.DicomBytesIO(good)).SOPInstanceUID]
    assert [f for f, _ in failures(body)] == [0xC000]
    assert await index_counts(client) == (1, 1, 1)


async def test_resending_is_idempotent_and_different_bytes_conflict(
    client: Client, world: World
) -> None:
    data = read_bundled("CT_small.dcm")
    assert (await stow(client, world, "gp-a", [data])).status == 200
    again = await stow(client, world, "gp-a", [data])
    assert again.status == 200
    assert len(referenced(await again.json())) == 1
    changed = data[:-2] + b"\x01\x02"  # same SOP Instance UID, different pixels
    conflict = await stow(client, world, "gp-a", [changed])
    assert conflict.status == 409
    ((reason, comment),) = failures(await conflict.json())
    assert reason == 0x0111
    assert comment.startswith("conflict:")
    assert await index_counts(client) == (1, 1, 1)
    assert len(blob_files(client)) == 1
    _, parts = await retrieve(client, world, "gp-a", _url(data))
    assert parts[0][1] == data
    (event,) = await audit_events(client.app, "dicom.conflict")
    assert (event.outcome, event.actor) == ("failure", "gp-a")
    assert sha256(changed) in event.details


async def test_storing_into_a_study_refuses_instances_of_another(
    client: Client, world: World
) -> None:
    ct = read_bundled("CT_small.dcm")
    mine = part10(dataset())
    response = await stow(client, world, "gp-a", [ct, mine], study=STUDY_UID)
    body = await response.json()
    assert response.status == 202
    assert referenced(body) == ["1.2.826.0.1.3680043.8.498.1"]
    ((reason, comment),) = failures(body)
    assert (reason, comment.split(":")[0]) == (0xA900, "study_mismatch")
    assert body["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{STUDY_UID}")


async def _post(client: Client, world: World, body: bytes, content_type: str) -> tuple[int, str]:
    response = await client.post(
        "/dicom-web/studies",
        data=body,
        headers={**world.auth("gp-a"), "Content-Type": content_type},
    )
    return response.status, (await response.json())["error"]["code"]


async def test_bad_requests_are_refused_whole(client: Client, world: World) -> None:
    ct = read_bundled("CT_small.dcm")
    body, content_type = multipart([ct], boundary="right-boundary")
    large = part10(dataset(replace={PIXEL_DATA: bytes(MAX_INSTANCE_BYTES)}))
    oversize_part, oversize_part_type = multipart([ct, large])
    cases = {
        "wrong boundary": (body, content_type.replace("right-boundary", "wrong-boundary"), 400),
        "no boundary": (body, 'multipart/related; type="application/dicom"', 400),
        "not multipart": (ct, "application/dicom", 415),
        "parts of another type": (body, content_type.replace("dicom", "dicom+json"), 415),
        "no parts": (*multipart([]), 400),
        "oversized instance": (oversize_part, oversize_part_type, 413),
        "oversized body": (
            *multipart([ct] * (MAX_STOW_BYTES // len(ct) + 1)),
            413,
        ),
    }
    for label, (data, kind, status) in cases.items():
        got, code = await _post(client, world, data, kind)
        assert got == status, (label, got, code)
        assert blob_files(client) == [], label
        assert await index_counts(client) == (0, 0, 0), label
    assert (await stow(client, world, "gp-a", [ct])).status == 200


async def test_an_oversized_streamed_body_is_refused_while_reading(
    client: Client, world: World
) -> None:
    ct = read_bundled("CT_small.dcm")
    body, content_type = multipart([ct] * (MAX_STOW_BYTES // len(ct) + 1))

    async def chunks():  # no Content-Length: the limit is enforced as parts arrive
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post(
        "/dicom-web/studies",
        data=chunks(),
        headers={**world.auth("gp-a"), "Content-Type": content_type},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert blob_files(client) == []
    assert await index_counts(client) == (0, 0, 0)
    (refusal,) = [
        e for e in await audit_events(client.app, "dicom.store") if e.object_type == "request"
    ]
    assert refusal.outcome == "failure"


async def test_kiosks_and_strangers_cannot_store(client: Client, world: World) -> None:
    body, content_type = multipart([read_bundled("CT_small.dcm")])
    kiosk = await stow(client, world, "kiosk", [read_bundled("CT_small.dcm")])
    anonymous = await client.post(
        "/dicom-web/studies", data=body, headers={"Content-Type": content_type}
    )
    assert (kiosk.status, anonymous.status) == (403, 401)
    assert blob_files(client) == []
