"""A-ASSOCIATE (PS3.8 7.1): admit a peer by its AE title *and* its address or certificate.

The calling AE title only names an organisation; the association is its
organisation's when the peer connects from one of the organisation's networks
(none listed: loopback only), or presents the TLS client certificate pinned to
it. Everything else is rejected with A-ASSOCIATE-RJ and audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts import dicom_peers
from server.audit.service import DENIED, SUCCESS
from server.db import transaction
from server.dimse import tls
from server.dimse.scp import Peer, Scp

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ fields (PS3.8 9.3.4, Table 9-21).
REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02
SOURCE_SERVICE_USER = 0x01
NO_REASON_GIVEN = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to admit an association: its organisation, or the diagnostic of the rejection."""

    org_id: int | None
    diagnostic: int | None = None
    reason: str = ""

    @property
    def admitted(self) -> bool:
        """True when the association is accepted."""
        return self.diagnostic is None


def handle_assoc_request(event: Any, scp: Scp) -> None:
    """EVT_REQUESTED: admit an organisation's peer, reject (and audit) anyone else."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    peer = Peer(
        ae_title=str(request.calling_ae_title).strip(),
        address=str(assoc.requestor.address),
        org_id=None,
    )
    called_ae_title = str(request.called_ae_title).strip()
    try:
        certificate = tls.peer_certificate_sha256(assoc)
        verdict = scp.run(_admission(scp, peer, called_ae_title, certificate))
    except Exception:
        log.exception("could not decide on the association from %s", peer.address)
        _reject(assoc, REJECTED_TRANSIENT, NO_REASON_GIVEN)
        return
    if not verdict.admitted:
        log.warning(
            "rejected association from %s, calling AE title %r: %s",
            peer.address,
            peer.ae_title,
            verdict.reason,
        )
        assert verdict.diagnostic is not None
        _reject(assoc, REJECTED_PERMANENT, verdict.diagnostic)
        return
    scp.admit(assoc, replace(peer, org_id=verdict.org_id))


async def _admission(
    scp: Scp, peer: Peer, called_ae_title: str, certificate: str | None
) -> Verdict:
    """Decide on an association; a rejection, or a stranger admitted, is audited."""
    async with transaction(scp.session_maker) as session:
        claimed = await dicom_peers.by_ae_title(session=session, ae_title=peer.ae_title)
        verdict = await _decide(session, scp, peer, called_ae_title, certificate, claimed)
        if not verdict.admitted or claimed is None:
            details: dict[str, object] = {
                "called_ae_title": called_ae_title,
                "reason": verdict.reason,
                "address": peer.address,
            }
            if certificate is not None:
                details["certificate_sha256"] = certificate
            await scp.audit(peer).record(
                session,
                action="dicom.associate",
                outcome=SUCCESS if verdict.admitted else DENIED,
                object_type="ae_title",
                object_id=peer.ae_title,
                org_id=claimed.org_id if claimed is not None else None,
                details=details,
            )
        return verdict


async def _decide(
    session: AsyncSession,
    scp: Scp,
    peer: Peer,
    called_ae_title: str,
    certificate: str | None,
    claimed: dicom_peers.DicomPeer | None,
) -> Verdict:
    """The rules, in order: our AE title, a pinned certificate, the AE title, the address."""
    if called_ae_title != scp.settings.ae_title:
        return Verdict(None, CALLED_AE_NOT_RECOGNISED, "called AE title not recognised")
    if certificate is not None:
        pinned = await dicom_peers.by_certificate(session=session, cert_sha256=certificate)
        if pinned is not None:
            if claimed is None or claimed.org_id != pinned.org_id:
                return Verdict(
                    None,
                    CALLING_AE_NOT_RECOGNISED,
                    "the client certificate belongs to another organisation's AE title",
                )
            return Verdict(pinned.org_id)
    if claimed is None:
        if scp.settings.dimse_unknown_ae == "accept":
            return Verdict(None, reason="unknown calling AE")  # C-ECHO only
        return Verdict(None, CALLING_AE_NOT_RECOGNISED, "unknown calling AE")
    if claimed.admits(peer.address):
        return Verdict(claimed.org_id)
    # PS3.8 has no diagnostic for "wrong address": the calling AE title is not recognised
    # *from this peer*, which is how dcmtk's dcmqrscp rejects a known AE title from a host
    # its configuration does not list (reason 3, rejected-permanent). Retrying will not help.
    return Verdict(
        None,
        CALLING_AE_NOT_RECOGNISED,
        "address not on the organisation's DICOM peer list"
        if claimed.networks
        else "the organisation lists no DICOM peers, so only loopback peers are admitted",
    )


def _reject(assoc: Any, result: int, diagnostic: int) -> None:
    """Send A-ASSOCIATE-RJ from the service user and end the association, as pynetdicom does."""
    assoc.acse.send_reject(result, SOURCE_SERVICE_USER, diagnostic)
    assoc.is_rejected = True
    assoc.kill()
