"""Storage Service Class (PS3.4 Annex B): C-STORE into the archive, results as DIMSE statuses."""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset

from dicom_tools.status import GeneralStatus, StorageStatus, store_failure_status
from server.archive import service as archive
from server.dimse.scp import Peer, Scp
from server.dimse.status import status
from server.errors import DomainError

log = logging.getLogger(__name__)

SOURCE = "dimse"


def handle_store(event: Any, scp: Scp) -> Dataset:
    """EVT_C_STORE: store the dataset as received (a Part 10 stream, never decoded) for the peer."""
    peer = scp.peer(event.assoc)
    if peer is None or peer.org_id is None:
        return status(
            GeneralStatus.REFUSED_NOT_AUTHORIZED, "calling AE title belongs to no organisation"
        )
    try:
        result = scp.run(_store(scp, peer, peer.org_id, event.encoded_dataset()))
    except TimeoutError:
        log.error("C-STORE from %s timed out waiting for the archive", peer.ae_title)
        return status(StorageStatus.REFUSED_OUT_OF_RESOURCES, "the archive is busy, try again")
    except DomainError as error:
        return status(StorageStatus.ERROR_CANNOT_UNDERSTAND, error.message)
    except Exception:
        log.exception("C-STORE from %s failed", peer.ae_title)
        return status(GeneralStatus.PROCESSING_FAILURE, "the archive failed to store the instance")
    return store_status(result)


async def _store(scp: Scp, peer: Peer, org_id: int, data: bytes) -> archive.StoreResult:
    (result,) = await scp.archive.store(
        audit=scp.audit(peer), org_id=org_id, items=[data], source=SOURCE
    )
    return result


def store_status(result: archive.StoreResult) -> Dataset:
    """The C-STORE response status for what the archive did with an instance (as STOW-RS's)."""
    if result.ok:
        return status(GeneralStatus.SUCCESS)
    return status(store_failure_status(result.reason), result.message)
