"""Archive store results map to the C-STORE statuses of PS3.4 B.2.3 and PS3.7 C, as over STOW."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from server import keys
from server.archive.service import Outcome, StoreResult
from server.archive.storage import StagedBlob
from server.dimse.storage import store_status
from tests.dicom_tools.part10 import dataset, part10
from tests.server.dicomweb.helpers import Client, failures, stow
from tests.server.dimse.peers import Listener, c_store, stored
from tests.support import World

ORIGINAL = part10(dataset())


@pytest.mark.parametrize(
    ("outcome", "reason", "status"),
    [
        ("stored", None, 0x0000),
        ("duplicate", None, 0x0000),
        ("replaced", None, 0x0000),
        ("conflict", "conflict", 0x0111),
        ("rejected", "meta_mismatch", 0xA900),
        ("rejected", "missing_attribute", 0xA900),
        ("rejected", "truncated", 0xC000),
        ("rejected", "not_dicom", 0xC000),
        ("rejected", "unsupported_transfer_syntax", 0xC122),
        ("rejected", "too_large", 0xA700),
        ("failed", "out_of_resources", 0xA700),
        ("failed", "storage", 0x0110),  # an I/O error other than a full disk
        ("failed", None, 0x0110),
    ],
)
def test_store_status(outcome: Outcome, reason: str | None, status: int) -> None:
    found = store_status(StoreResult(outcome=outcome, reason=reason, message="why"))
    assert found.Status == status
    assert ("ErrorComment" in found) is (status != 0x0000)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errno.ENOSPC, 0xA700),  # Refused: Out of Resources, PS3.4 Table B.2-1
        (errno.EDQUOT, 0xA700),
        (errno.EIO, 0x0110),  # Processing Failure, PS3.7 Annex C
    ],
    ids=["disk-full", "over-quota", "io-error"],
)
async def test_a_disk_failure_has_the_same_status_over_stow_rs_and_c_store(
    listener: Listener,
    client: Client,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    error: int,
    code: int,
) -> None:
    def failing_stage(data: bytes, sha256: str) -> StagedBlob:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(client.app[keys.ARCHIVE].storage, "stage", failing_stage)
    response = await stow(client, world, "gp-a", [ORIGINAL])
    assert response.status == 409
    ((stow_code, comment),) = failures(await response.json())
    dimse_code = await asyncio.to_thread(c_store, listener, ORIGINAL)
    assert (stow_code, dimse_code) == (code, code), comment
    assert await stored(listener, world.orgs["clinic-a"]) == {}


async def test_a_modality_resending_an_uploaded_instance_is_a_duplicate_not_a_conflict(
    listener: Listener, client: Client, world: World
) -> None:
    """The GP uploads a file; the modality sends the same data set with its own group 0002."""
    response = await stow(client, world, "gp-a", [ORIGINAL])
    assert response.status == 200
    [first] = (await stored(listener, world.orgs["clinic-a"])).values()
    assert await asyncio.to_thread(c_store, listener, ORIGINAL) == 0x0000
    [after] = (await stored(listener, world.orgs["clinic-a"])).values()
    assert after.sha256 == first.sha256  # the first file is kept as it was
    # A different data set under the same SOP Instance UID is still a conflict.
    changed = part10(dataset(replace={0x00100010: b"Someone^Else"}))
    assert await asyncio.to_thread(c_store, listener, changed) == 0x0111
