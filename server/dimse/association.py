"""A-ASSOCIATE (PS3.8 7.1): map the calling AE title to an organisation or reject it."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from server.accounts.models import Organisation
from server.audit.service import DENIED, SUCCESS
from server.db import transaction
from server.dimse.scp import Peer, Scp

log = logging.getLogger(__name__)

REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02
SOURCE_SERVICE_USER = 0x01
NO_REASON_GIVEN = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03


def handle_assoc_request(event: Any, scp: Scp) -> None:
    """EVT_REQUESTED: admit a calling AE that an organisation claims, reject (and audit) others."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    ae_title = str(request.calling_ae_title).strip()
    peer = Peer(ae_title=ae_title, address=str(assoc.requestor.address), org_id=None)
    try:
        org_id = scp.run(_organisation_of(scp, peer, str(request.called_ae_title).strip()))
    except Exception:
        log.exception("could not map calling AE title %r to an organisation", ae_title)
        _reject(assoc, REJECTED_TRANSIENT, NO_REASON_GIVEN)
        return
    if org_id is None and scp.settings.dimse_unknown_ae == "reject":
        log.warning("rejected association from unknown calling AE title %r", ae_title)
        _reject(assoc, REJECTED_PERMANENT, CALLING_AE_NOT_RECOGNISED)
        return
    scp.admit(assoc, Peer(ae_title=ae_title, address=peer.address, org_id=org_id))


async def _organisation_of(scp: Scp, peer: Peer, called_ae_title: str) -> int | None:
    """The organisation whose AE title this is; an unknown one is audited."""
    async with transaction(scp.session_maker) as session:
        org_id = await session.scalar(
            select(Organisation.id).where(Organisation.ae_title == peer.ae_title)
        )
        if org_id is None:
            await scp.audit(peer).record(
                session,
                action="dicom.associate",
                outcome=DENIED if scp.settings.dimse_unknown_ae == "reject" else SUCCESS,
                object_type="ae_title",
                object_id=peer.ae_title,
                details={"called_ae_title": called_ae_title, "reason": "unknown calling AE"},
            )
        return org_id


def _reject(assoc: Any, result: int, diagnostic: int) -> None:
    """Send A-ASSOCIATE-RJ from the service user and end the association, as pynetdicom does."""
    assoc.acse.send_reject(result, SOURCE_SERVICE_USER, diagnostic)
    assoc.is_rejected = True
    assoc.kill()
