"""WADO-RS: instances, metadata and bulk data, frames, content negotiation, org scoping."""

from __future__ import annotations

import struct
from typing import get_args

import pydicom
from pydicom.encaps import generate_frames

from dicom_tools.bulkdata import BulkDataReason
from dicom_tools.frames import FrameReason
from server.dicomweb.wado import STORED_REFUSALS
from tests.dicom_tools.part10 import PIXEL_DATA, SERIES_UID, STUDY_UID, dataset, part10
from tests.server.dicomweb.helpers import (
    read_bundled,
    retrieve,
    stow,
)
from tests.support import Client, World, audit_events, sha256

OCTET_STREAM = 'multipart/related; type="application/octet-stream"'


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))


def _url(data: bytes) -> str:
    ds = _read(data)
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _two_frames() -> bytes:
    """A native 16-bit instance of two 2x3 frames."""
    us = lambda value: struct.pack("<H", value)  # noqa: E731
    body = dataset(
        replace={PIXEL_DATA: bytes(range(24))},
        extra={
            0x00280002: ("US", us(1)),
            0x00280008: ("IS", b"2"),
            0x00280010: ("US", us(2)),
            0x00280011: ("US", us(3)),
            0x00280100: ("US", us(16)),
        },
    )
    return part10(body)


async def test_study_series_and_single_instance_retrieval(client: Client, world: World) -> None:
    ct, frames = read_bundled("CT_small.dcm"), _two_frames()
    assert (await stow(client, world, "gp-a", [ct, frames])).status == 200
    reply, parts = await retrieve(client, world, "gp-a", f"/dicom-web/studies/{STUDY_UID}")
    assert reply.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
    assert [sha256(p) for _, p in parts] == [sha256(frames)]
    _, parts = await retrieve(
        client, world, "gp-a", f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}"
    )
    assert [p for _, p in parts] == [frames]
    single, body = await retrieve(client, world, "gp-a", _url(ct), Accept="application/dicom")
    assert single.status == 200
    assert single.content_type == "application/dicom"
    assert body == ct
    _, parts = await retrieve(
        client,
        world,
        "gp-a",
        _url(ct),
        Accept='multipart/related; type="application/dicom"; transfer-syntax=*',
    )
    assert [p for _, p in parts] == [ct]
    implicit, parts = await retrieve(
        client,
        world,
        "gp-a",
        _url(ct),
        Accept='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2',
    )
    assert implicit.status == 200
    assert parts[0][0] == 'application/dicom; transfer-syntax="1.2.840.10008.1.2"'
    transcoded = _read(parts[0][1])
    assert transcoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert (transcoded.pixel_array == _read(ct).pixel_array).all()
    events = await audit_events(client.app, "dicom.retrieve")
    assert [e.object_type for e in events][:3] == ["study", "series", "instance"]
    assert all(e.outcome == "success" for e in events)


async def test_metadata_points_at_bulk_data_that_can_be_fetched(
    client: Client, world: World
) -> None:
    names = ["CT_small.dcm", "image_dfl.dcm", "waveform_ecg.dcm", "examples_ybr_color.dcm"]
    files = {name: read_bundled(name) for name in names}
    assert (await stow(client, world, "gp-a", list(files.values()))).status == 200
    for name, data in files.items():
        ds = _read(data)
        response = await client.get(_url(data) + "/metadata", headers=world.auth("gp-a"))
        assert response.status == 200, name
        assert response.content_type == "application/dicom+json"
        (document,) = await response.json()
        assert document["00080018"]["Value"] == [ds.SOPInstanceUID], name
        assert document["00083002"]["Value"] == [ds.file_meta.TransferSyntaxUID], name
        if name == "waveform_ecg.dcm":
            uri = document["54000100"]["Value"][0]["54001010"]["BulkDataURI"]
            expected = [ds.WaveformSequence[0].WaveformData]
        else:
            uri = document["7FE00010"]["BulkDataURI"]
            if ds.file_meta.TransferSyntaxUID.is_encapsulated:
                expected = list(generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames))
            else:
                expected = [ds.PixelData]
        assert uri.startswith(str(client.make_url("/dicom-web/studies/"))), name
        reply, parts = await retrieve(
            client, world, "gp-a", uri.split(str(client.server.port), 1)[1]
        )
        assert reply.status == 200, name
        assert [p for _, p in parts] == expected, name
    study = _read(files["CT_small.dcm"]).StudyInstanceUID
    whole = await client.get(f"/dicom-web/studies/{study}/metadata", headers=world.auth("gp-a"))
    assert len(await whole.json()) == 1


async def test_frames_as_stored(client: Client, world: World) -> None:
    native, jpeg = _two_frames(), read_bundled("examples_ybr_color.dcm")
    big_endian = read_bundled("MR_small_bigendian.dcm")
    assert (await stow(client, world, "gp-a", [native, jpeg, big_endian])).status == 200

    reply, parts = await retrieve(client, world, "gp-a", _url(native) + "/frames/2,1")
    assert reply.headers["Content-Type"].startswith(OCTET_STREAM)
    assert [p for _, p in parts] == [bytes(range(12, 24)), bytes(range(12))]
    assert parts[0][0] == 'application/octet-stream; transfer-syntax="1.2.840.10008.1.2.1"'

    _, parts = await retrieve(client, world, "gp-a", _url(big_endian) + "/frames/1")
    assert [p for _, p in parts] == [_read(read_bundled("MR_small.dcm")).PixelData]

    ds = _read(jpeg)
    expected = list(generate_frames(ds.PixelData, number_of_frames=30))
    for accept in (
        "",
        'multipart/related; type="image/jpeg"',
        f"{OCTET_STREAM}; transfer-syntax=*",
    ):
        reply, parts = await retrieve(
            client,
            world,
            "gp-a",
            _url(jpeg) + "/frames/1,30",
            **({"Accept": accept} if accept else {}),
        )
        assert reply.status == 200, accept
        assert [p for _, p in parts] == [expected[0], expected[29]], accept
        assert parts[0][0].endswith('transfer-syntax="1.2.840.10008.1.2.4.50"'), accept
    decoded, parts = await retrieve(
        client, world, "gp-a", _url(jpeg) + "/frames/1", Accept=OCTET_STREAM
    )
    assert decoded.status == 200
    assert [p for _, p in parts] == [ds.pixel_array[0].tobytes()]
    assert parts[0][0] == 'application/octet-stream; transfer-syntax="1.2.840.10008.1.2.1"'
    refused, _ = await retrieve(
        client,
        world,
        "gp-a",
        _url(jpeg) + "/frames/1",
        Accept='multipart/related; type="image/jp2"',
    )
    assert refused.status == 406
    assert "transfer-syntax=*" in (await refused.json())["error"]["message"]
    refused, _ = await retrieve(
        client,
        world,
        "gp-a",
        _url(native) + "/frames/1",
        Accept='multipart/related; type="image/jpeg"',
    )
    assert refused.status == 406
    assert "cannot compress" in (await refused.json())["error"]["message"]

    for path, status in [
        (_url(jpeg) + "/frames/31", 404),
        (_url(jpeg) + "/frames/0", 404),
        (_url(jpeg) + "/frames/one", 400),
    ]:
        response = await client.get(path, headers=world.auth("gp-a"))
        assert response.status == status, path


async def test_another_clinic_gets_404_and_the_attempt_is_audited(
    client: Client, world: World
) -> None:
    ct = read_bundled("CT_small.dcm")
    assert (await stow(client, world, "gp-a", [ct])).status == 200
    url = _url(ct)
    study = url.split("/series/")[0]
    paths = [study, study + "/metadata", url, url + "/metadata", url + "/frames/1",
             url + "/bulkdata/7FE00010"]  # fmt: skip
    for path in paths:
        response = await client.get(path, headers=world.auth("gp-b"))
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"
        assert (await client.get(path, headers=world.auth("kiosk"))).status == 403, path
        assert (await client.get(path)).status == 401, path
    missing = await client.get("/dicom-web/studies/1.2.3.4", headers=world.auth("gp-a"))
    assert missing.status == 404
    events = await audit_events(client.app, "dicom.retrieve")
    assert [e.outcome for e in events] == ["denied"] * len(paths) + ["failure"]
    assert {e.org_id for e in events[:-1]} == {world.orgs["clinic-a"]}
    assert {e.actor for e in events} == {"gp-b", "gp-a"}


def test_every_refusal_to_read_frames_or_bulk_data_has_an_http_error() -> None:
    assert set(STORED_REFUSALS) == {*get_args(FrameReason), *get_args(BulkDataReason)}
