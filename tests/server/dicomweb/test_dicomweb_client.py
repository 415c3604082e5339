"""The real dicomweb-client package stores, searches and retrieves against the server."""

from __future__ import annotations

import asyncio
import io

import pydicom
from dicomweb_client import DICOMwebClient
from pydicom.encaps import generate_frames

from server import keys
from tests.server.dicomweb.helpers import read_bundled
from tests.support import Client, World, sha256


def _encoded(ds: pydicom.Dataset) -> bytes:
    """The bytes dicomweb-client sends for a dataset."""
    with io.BytesIO() as out:
        pydicom.dcmwrite(out, ds)
        return out.getvalue()


async def test_dicomweb_client_round_trip(client: Client, world: World) -> None:
    # dicomweb-client sends "Host: 127.0.0.1" without the port, so absolute URLs in responses
    # come from the public URL, as they would behind a reverse proxy.
    client.app[keys.SETTINGS].public_url = str(client.make_url(""))
    web = DICOMwebClient(url=str(client.make_url("/dicom-web")), headers=world.auth("gp-a"))
    ct = pydicom.dcmread(io.BytesIO(read_bundled("CT_small.dcm")))
    jpeg = pydicom.dcmread(io.BytesIO(read_bundled("examples_ybr_color.dcm")))
    stored = await asyncio.to_thread(web.store_instances, [ct, jpeg])
    assert {item.ReferencedSOPInstanceUID for item in stored.ReferencedSOPSequence} == {
        ct.SOPInstanceUID,
        jpeg.SOPInstanceUID,
    }
    assert "FailedSOPSequence" not in stored

    studies = await asyncio.to_thread(web.search_for_studies, search_filters={"PatientID": "1CT1"})
    assert [s["0020000D"]["Value"][0] for s in studies] == [ct.StudyInstanceUID]
    series = await asyncio.to_thread(web.search_for_series, ct.StudyInstanceUID)
    assert [s["0020000E"]["Value"][0] for s in series] == [ct.SeriesInstanceUID]
    instances = await asyncio.to_thread(
        web.search_for_instances, ct.StudyInstanceUID, ct.SeriesInstanceUID
    )
    assert [i["00080018"]["Value"][0] for i in instances] == [ct.SOPInstanceUID]

    retrieved = await asyncio.to_thread(
        web.retrieve_instance, ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    )
    assert sha256(_encoded(retrieved)) == sha256(_encoded(ct))
    # retrieve_instance asks for transfer-syntax=* by default; retrieve_study sends no
    # transfer-syntax, which PS3.18 reads as Explicit VR Little Endian (so the archive would
    # decompress the JPEG): ask for the stored bytes to keep the round trip byte-identical.
    study = await asyncio.to_thread(
        web.retrieve_study, jpeg.StudyInstanceUID, media_types=(("application/dicom", "*"),)
    )
    assert [ds.SOPInstanceUID for ds in study] == [jpeg.SOPInstanceUID]
    assert sha256(_encoded(study[0])) == sha256(_encoded(jpeg))
    # 30 decoded 320x240 RGB frames exceed the suite's max_inflated_bytes, so the default
    # request falls back to the stored bytes, in the stored syntax.
    default = await asyncio.to_thread(web.retrieve_study, jpeg.StudyInstanceUID)
    assert default[0].file_meta.TransferSyntaxUID == jpeg.file_meta.TransferSyntaxUID
    metadata = await asyncio.to_thread(web.retrieve_study_metadata, ct.StudyInstanceUID)
    bulk = await asyncio.to_thread(web.retrieve_bulkdata, metadata[0]["7FE00010"]["BulkDataURI"])
    assert bulk == [ct.PixelData]
    frames = await asyncio.to_thread(
        web.retrieve_instance_frames,
        jpeg.StudyInstanceUID,
        jpeg.SeriesInstanceUID,
        jpeg.SOPInstanceUID,
        frame_numbers=[2],
        media_types=("image/jpeg",),
    )
    assert frames == [list(generate_frames(jpeg.PixelData, number_of_frames=30))[1]]

    other = DICOMwebClient(url=str(client.make_url("/dicom-web")), headers=world.auth("gp-b"))
    assert await asyncio.to_thread(other.search_for_studies) == []
