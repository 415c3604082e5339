"""Storage Service Class (PS3.4 Annex B): C-STORE into the archive, results as DIMSE statuses."""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset

from server.archive import service as archive
from server.dimse import status as st
from server.dimse.scp import Peer, Scp
from server.errors import DomainError

log = logging.getLogger(__name__)

SOURCE = "dimse"

_DOES_NOT_MATCH = frozenset(
    {"missing_attribute", "invalid_uid", "invalid_attribute", "meta_mismatch"}
)
_NO_RESOURCES = frozenset({"too_large", "inflated_too_large", "out_of_resources", "storage"})


def handle_store(event: Any, scp: Scp) -> Dataset:
    """EVT_C_STORE: store the dataset as received (a Part 10 stream, never decoded) for the peer."""
    peer = scp.peer(event.assoc)
    if peer is None or peer.org_id is None:
        return st.status(st.NOT_AUTHORISED, "calling AE title belongs to no organisation")
    try:
        result = scp.run(_store(scp, peer, peer.org_id, event.encoded_dataset()))
    except TimeoutError:
        log.error("C-STORE from %s timed out waiting for the archive", peer.ae_title)
        return st.status(st.OUT_OF_RESOURCES, "the archive is busy, try again")
    except DomainError as error:
        return st.status(st.CANNOT_UNDERSTAND, error.message)
    except Exception:
        log.exception("C-STORE from %s failed", peer.ae_title)
        return st.status(st.PROCESSING_FAILURE, "the archive failed to store the instance")
    return store_status(result)


async def _store(scp: Scp, peer: Peer, org_id: int, data: bytes) -> archive.StoreResult:
    (result,) = await scp.archive.store(
        audit=scp.audit(peer), org_id=org_id, items=[data], source=SOURCE
    )
    return result


def store_status(result: archive.StoreResult) -> Dataset:
    """The C-STORE response status for what the archive did with an instance."""
    if result.ok:
        return st.status(st.SUCCESS)
    if result.outcome == "conflict":
        return st.status(st.DUPLICATE_SOP_INSTANCE, result.message)
    if result.reason in _DOES_NOT_MATCH:
        return st.status(st.DOES_NOT_MATCH_SOP_CLASS, result.message)
    if result.reason in _NO_RESOURCES:
        return st.status(st.OUT_OF_RESOURCES, result.message)
    if result.outcome == "rejected":
        return st.status(st.CANNOT_UNDERSTAND, result.message)
    return st.status(st.PROCESSING_FAILURE, result.message)
