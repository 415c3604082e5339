"""A study sent over DIMSE is linked to the registered patient whose identifier it carries."""

from __future__ import annotations

import asyncio
import io

from pydicom import dcmread

from tests.dicom_tools.part10 import STUDY_UID
from tests.server.archive.test_links import instance, linked
from tests.server.dimse.peers import Listener, associate, scu
from tests.support import Client, World


def _c_store(listener: Listener, data: bytes) -> int:
    ds = dcmread(io.BytesIO(data))
    assoc = associate(listener, scu("CLINIC_A", [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)]))
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


async def test_a_study_sent_over_dimse_is_linked(
    listener: Listener, client: Client, world: World
) -> None:
    assert await asyncio.to_thread(_c_store, listener, instance()) == 0x0000
    assert await linked(client) == {STUDY_UID: world.patients["alice"]}
