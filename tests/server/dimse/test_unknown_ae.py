"""dimse_unknown_ae = "accept": a stranger may verify connectivity but neither store nor find."""

from __future__ import annotations

import asyncio

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from server.settings import Settings
from tests.server.dimse.peers import Listener, associate, bundled, scu
from tests.support import audit_trail

VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The DIMSE settings with unknown calling AE titles accepted."""
    return settings.model_copy(update={"dimse_unknown_ae": "accept"})


def _stranger(listener: Listener) -> tuple[int, int, list[int]]:
    contexts = [
        (VERIFICATION, ExplicitVRLittleEndian),
        (CT_IMAGE_STORAGE, ExplicitVRLittleEndian),
        (STUDY_ROOT_FIND, ExplicitVRLittleEndian),
    ]
    assoc = associate(listener, scu("STRANGER", contexts))
    try:
        echo = int(assoc.send_c_echo().Status)
        store = int(assoc.send_c_store(bundled("CT_small.dcm")).Status)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = "*"
        find = [int(status.Status) for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND)]
        return echo, store, find
    finally:
        assoc.release()


async def test_unknown_ae_is_accepted_for_verification_only(listener: Listener) -> None:
    echo, store, find = await asyncio.to_thread(_stranger, listener)
    assert (echo, store, find) == (0x0000, 0x0124, [0x0124])
    assert await audit_trail(listener.app, "dicom.associate") == [
        ("dicom:STRANGER", "STRANGER", "success")
    ]
