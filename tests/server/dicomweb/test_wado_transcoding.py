"""WADO-RS transcoding (PS3.18 8.7.3, 10.4): instances and decoded frames of compressed files."""

from __future__ import annotations

import pydicom
from aiohttp import ClientResponse

from server import keys
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.server.dicomweb.helpers import read_bundled, retrieve, stow
from tests.support import Client, World

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DICOM_PARTS = 'multipart/related; type="application/dicom"'
OCTET_PARTS = 'multipart/related; type="application/octet-stream"'
TRANSCODED = {
    "SC_rgb_jpeg_dcmtk.dcm": "1.2.840.10008.1.2.4.50",  # JPEG baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm": "1.2.840.10008.1.2.4.50",  # JPEG baseline, YBR_FULL_422
    "SC_rgb_jpeg_gdcm.dcm": "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "MR_small_jpeg_ls_lossless.dcm": "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "MR_small_jp2klossless.dcm": "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "JPEG2000.dcm": "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "SC_rgb_rle_2frame.dcm": "1.2.840.10008.1.2.5",  # RLE, two RGB frames
    "image_dfl.dcm": "1.2.840.10008.1.2.1.99",  # deflated
    "MR_small_bigendian.dcm": "1.2.840.10008.1.2.2",  # big endian
    "MR_small_implicit.dcm": IMPLICIT,
}
SMALL_LIMIT = 64 * 1024


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))


def _unique(name: str, *, study: str | None = None) -> bytes:
    """A bundled file with its own SOP Instance UID (several derive from one MR image)."""
    ds = _read(read_bundled(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    if study:
        ds.StudyInstanceUID = study
    out = pydicom.filebase.DicomBytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _url(ds: pydicom.Dataset) -> str:
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _frames(ds: pydicom.Dataset) -> list[bytes]:
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames") or 1) == 1:
        return [pixels.tobytes()]
    return [frame.tobytes() for frame in pixels]


async def _message(response: ClientResponse) -> str:
    body = await response.json()
    return str(body["error"]["message"])


async def test_every_stored_syntax_is_sent_as_explicit_or_implicit_vr_little_endian(
    client: Client, world: World
) -> None:
    files = {name: _unique(name) for name in TRANSCODED}
    assert (await stow(client, world, "gp-a", list(files.values()))).status == 200
    for name, data in files.items():
        original = _read(data)
        assert original.file_meta.TransferSyntaxUID == TRANSCODED[name], name
        url = _url(original)
        for accept, syntax in [
            (DICOM_PARTS, EXPLICIT),
            (f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}", EXPLICIT),
            (f"{DICOM_PARTS}; transfer-syntax={IMPLICIT}", IMPLICIT),
            (f"application/dicom; transfer-syntax={IMPLICIT}", IMPLICIT),
        ]:
            reply, body = await retrieve(client, world, "gp-a", url, Accept=accept)
            assert reply.status == 200, (name, accept)
            if accept.startswith("multipart"):
                ((content_type, body),) = body
            else:
                content_type = reply.headers["Content-Type"]
            assert content_type.replace('"', "") == f"application/dicom; transfer-syntax={syntax}"
            sent = _read(body)
            assert sent.file_meta.TransferSyntaxUID == syntax, (name, accept)
            assert sent.SOPInstanceUID == original.SOPInstanceUID
            assert sent.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
            assert (sent.pixel_array == original.pixel_array).all(), (name, accept)
            assert "ExtendedOffsetTable" not in sent
            if original.file_meta.TransferSyntaxUID == syntax:
                assert body == data, name
            else:
                assert body[:128] == bytes(128), name
        _, parts = await retrieve(
            client, world, "gp-a", url, Accept=f"{DICOM_PARTS}; transfer-syntax=*"
        )
        assert parts == [(f'application/dicom; transfer-syntax="{TRANSCODED[name]}"', data)]
        if original.file_meta.TransferSyntaxUID.is_encapsulated:
            count = int(original.get("NumberOfFrames") or 1)
            frames = ",".join(str(n) for n in range(count, 0, -1))
            reply, parts = await retrieve(
                client, world, "gp-a", f"{url}/frames/{frames}", Accept=OCTET_PARTS
            )
            assert reply.status == 200, name
            assert [p for _, p in parts] == _frames(original)[::-1], name
            assert {t for t, _ in parts} == {
                f'application/octet-stream; transfer-syntax="{EXPLICIT}"'
            }
            reply, parts = await retrieve(
                client,
                world,
                "gp-a",
                f"{url}/bulkdata/7FE00010",
                Accept=f"{OCTET_PARTS}; transfer-syntax={EXPLICIT}",
            )
            assert reply.status == 200, name
            assert [p for _, p in parts] == [b"".join(_frames(original))], name


async def test_lossy_jpeg_decodes_as_pydicom_decodes_it(client: Client, world: World) -> None:
    data = read_bundled("SC_rgb_jpeg_lossy_gdcm.dcm")
    assert (await stow(client, world, "gp-a", [data])).status == 200
    original = _read(data)
    _, body = await retrieve(client, world, "gp-a", _url(original), Accept="application/dicom")
    sent = _read(body)
    assert sent.PhotometricInterpretation == "RGB"
    assert sent.LossyImageCompression == "01"
    assert (sent.pixel_array == original.pixel_array).all()


async def test_a_syntax_the_archive_cannot_produce_is_refused(client: Client, world: World) -> None:
    native = read_bundled("CT_small.dcm")
    undecodable = read_bundled("JPEG-lossy.dcm")  # 12-bit JPEG extended: no installed decoder
    assert (await stow(client, world, "gp-a", [native, undecodable])).status == 200
    jpeg2000 = f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.90"
    refused, _ = await retrieve(client, world, "gp-a", _url(_read(native)), Accept=jpeg2000)
    assert refused.status == 406
    message = await _message(refused)
    assert "1.2.840.10008.1.2.1" in message
    assert "transfer-syntax=*" in message

    url = _url(_read(undecodable))
    refused, _ = await retrieve(
        client, world, "gp-a", url, Accept=f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}"
    )
    assert refused.status == 406
    message = await _message(refused)
    assert "1.2.840.10008.1.2.4.51" in message
    assert "transfer-syntax=*" in message
    # With no syntax named the stored bytes are sent, in the syntax they are stored in.
    reply, parts = await retrieve(client, world, "gp-a", url, Accept=DICOM_PARTS)
    assert reply.status == 200
    assert parts == [('application/dicom; transfer-syntax="1.2.840.10008.1.2.4.51"', undecodable)]
    refused, _ = await retrieve(client, world, "gp-a", url + "/frames/1", Accept=OCTET_PARTS)
    assert refused.status == 406
    assert "transfer-syntax=*" in await _message(refused)


async def test_a_study_mixes_stored_and_transcoded_parts(client: Client, world: World) -> None:
    native = part10(dataset())
    rle = _unique("MR_small_RLE.dcm", study=STUDY_UID)
    rle_ds = _read(rle)
    assert (await stow(client, world, "gp-a", [native, rle])).status == 200
    reply, parts = await retrieve(client, world, "gp-a", f"/dicom-web/studies/{STUDY_UID}")
    assert reply.status == 200
    by_uid = {_read(body).SOPInstanceUID: (content_type, body) for content_type, body in parts}
    assert by_uid[_read(native).SOPInstanceUID] == (
        f'application/dicom; transfer-syntax="{EXPLICIT}"',
        native,
    )
    content_type, body = by_uid[rle_ds.SOPInstanceUID]
    assert content_type == f'application/dicom; transfer-syntax="{EXPLICIT}"'
    assert (_read(body).pixel_array == rle_ds.pixel_array).all()


async def test_decoding_past_max_inflated_bytes_is_refused(client: Client, world: World) -> None:
    files = [read_bundled(n) for n in ("MR_small_RLE.dcm", "examples_jpeg2k.dcm")]
    assert (await stow(client, world, "gp-a", files)).status == 200
    client.app[keys.SETTINGS].max_inflated_bytes = SMALL_LIMIT
    big = _read(files[1])  # 640x480 RGB: 921,600 bytes decoded
    url = _url(big)
    for path, accept in [
        (url, f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}"),
        (url, f"application/dicom; transfer-syntax={IMPLICIT}"),
        (url + "/frames/1", OCTET_PARTS),
        (url + "/bulkdata/7FE00010", OCTET_PARTS),
    ]:
        refused, _ = await retrieve(client, world, "gp-a", path, Accept=accept)
        assert refused.status == 406, (path, accept)
        body = await refused.json()
        assert body["error"]["details"] == {"reason": "too_large"}
        assert str(SMALL_LIMIT) in body["error"]["message"]
        assert "transfer-syntax=*" in body["error"]["message"]
    # The default falls back to the stored bytes; the server keeps serving decodable ones.
    reply, parts = await retrieve(client, world, "gp-a", url, Accept=DICOM_PARTS)
    assert parts == [('application/dicom; transfer-syntax="1.2.840.10008.1.2.4.90"', files[1])]
    small = _read(files[0])
    reply, parts = await retrieve(client, world, "gp-a", _url(small), Accept=DICOM_PARTS)
    assert reply.status == 200
    assert _read(parts[0][1]).file_meta.TransferSyntaxUID == EXPLICIT


async def test_a_study_with_one_oversize_instance_is_refused_before_sending(
    client: Client, world: World
) -> None:
    names = ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm")
    files = [_unique(name, study=STUDY_UID) for name in names]
    assert (await stow(client, world, "gp-a", files)).status == 200
    client.app[keys.SETTINGS].max_inflated_bytes = 4096  # both are 64x64x16 bits: 8,192 bytes
    refused, _ = await retrieve(
        client,
        world,
        "gp-a",
        f"/dicom-web/studies/{STUDY_UID}",
        Accept=f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}",
    )
    assert refused.status == 406
    assert (await refused.json())["error"]["details"] == {"reason": "too_large"}
