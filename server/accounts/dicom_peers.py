"""An organisation's DICOM peers: the networks its devices connect from and a pinned certificate.

The calling AE title names an organisation but proves nothing: a DIMSE peer is
admitted when its address lies in one of the organisation's networks (none
listed: loopback only), or when it presents the TLS client certificate pinned
to the organisation. Networks are stored as `ipaddress.ip_network(strict=False)`
prints them; host names are refused rather than resolved, because the list is
matched against the address a peer connects from and a name resolved once would
silently stop following DNS (and the CLI may resolve it in another network).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.models import Organisation, OrganisationDicomPeer
from server.errors import Conflict, InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
"""Where the peers of an organisation without a list may connect from."""

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_NETWORKS = 256


def parse_network(text: str) -> str:
    """A peer address or network as stored (normalised CIDR); host names are refused."""
    value = text.strip()
    if "%" in value:
        raise InvalidInput(f"Give the DICOM peer {value!r} without a zone index (%…).")
    try:
        network: Network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidInput(
            f"DICOM peer {value!r} is not an IP address or network. Give the address a "
            "modality connects from (192.168.1.20, 2001:db8::20) or its network "
            "(192.168.1.0/24): host names are not accepted, since peers are matched "
            "by their address."
        ) from None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:  # ::ffff:a.b.c.d/n is an IPv4 network
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return str(network)


def parse_networks(texts: Iterable[str]) -> list[str]:
    """Several peers, normalised and without repeats, in the order given."""
    networks = list(dict.fromkeys(parse_network(text) for text in texts))
    if len(networks) > _MAX_NETWORKS:
        raise InvalidInput(f"At most {_MAX_NETWORKS} DICOM peers per organisation.")
    return networks


def parse_fingerprint(text: str) -> str:
    """A certificate's SHA-256 as stored: 64 lower-case hex digits (colons, openssl's prefix ok)."""
    value = text.rsplit("=", 1)[-1].strip().replace(":", "").lower()
    if not _SHA256_RE.fullmatch(value):
        raise InvalidInput(
            "A certificate fingerprint is 64 hex digits, as printed by "
            "`openssl x509 -in client.crt -noout -fingerprint -sha256`."
        )
    return value


def address_allowed(address: str, networks: Collection[str]) -> bool:
    """Whether a peer's address lies in one of the networks (no networks: loopback only)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 peer of a dual-stack listener
    allowed = [ipaddress.ip_network(n) for n in networks] if networks else LOOPBACK
    return any(ip in network for network in allowed)  # other IP versions never match


def sort_key(network: str) -> tuple[int, int, int]:
    """Order networks as an operator reads them: IPv4 first, by address, then prefix."""
    parsed = ipaddress.ip_network(network)
    return parsed.version, int(parsed.network_address), parsed.prefixlen


@dataclass(frozen=True, slots=True)
class DicomPeer:
    """An organisation as a DICOM peer: its AE title, networks and pinned certificate."""

    org_id: int
    ae_title: str | None
    networks: tuple[str, ...]
    cert_sha256: str | None

    def admits(self, address: str) -> bool:
        """Whether a connection from this address may speak for the organisation."""
        return address_allowed(address, self.networks)


async def networks_of(*, session: AsyncSession, org_id: int) -> list[str]:
    """An organisation's DICOM peer networks, in reading order."""
    rows = await session.scalars(
        select(OrganisationDicomPeer.network).where(OrganisationDicomPeer.org_id == org_id)
    )
    return sorted(rows, key=sort_key)


async def networks_by_org(*, session: AsyncSession) -> dict[int, list[str]]:
    """Every organisation's DICOM peer networks by organisation id (only those with a list)."""
    found: dict[int, list[str]] = {}
    for org_id, network in await session.execute(
        select(OrganisationDicomPeer.org_id, OrganisationDicomPeer.network)
    ):
        found.setdefault(org_id, []).append(network)
    return {org_id: sorted(networks, key=sort_key) for org_id, networks in found.items()}


async def set_networks(*, session: AsyncSession, org_id: int, networks: Sequence[str]) -> None:
    """Replace an organisation's DICOM peer networks (already normalised)."""
    if len(networks) > _MAX_NETWORKS:
        raise InvalidInput(f"At most {_MAX_NETWORKS} DICOM peers per organisation.")
    await session.execute(
        delete(OrganisationDicomPeer).where(OrganisationDicomPeer.org_id == org_id)
    )
    session.add_all(OrganisationDicomPeer(org_id=org_id, network=n) for n in networks)
    await session.flush()


async def check_certificate_free(
    *, session: AsyncSession, cert_sha256: str, org_id: int | None
) -> None:
    """Refuse a certificate pinned to another organisation already."""
    owner = await session.scalar(
        select(Organisation.name).where(
            Organisation.dicom_cert_sha256 == cert_sha256, Organisation.id != (org_id or 0)
        )
    )
    if owner is not None:
        raise Conflict(f"That certificate is pinned to {owner!r} already.")


async def _peer(session: AsyncSession, org: Organisation | None) -> DicomPeer | None:
    if org is None:
        return None
    networks = await networks_of(session=session, org_id=org.id)
    return DicomPeer(org.id, org.ae_title, tuple(networks), org.dicom_cert_sha256)


async def by_ae_title(*, session: AsyncSession, ae_title: str) -> DicomPeer | None:
    """The organisation whose calling AE title this is, as a DICOM peer."""
    org = await session.scalar(select(Organisation).where(Organisation.ae_title == ae_title))
    return await _peer(session, org)


async def by_certificate(*, session: AsyncSession, cert_sha256: str) -> DicomPeer | None:
    """The organisation a TLS client certificate is pinned to, as a DICOM peer."""
    org = await session.scalar(
        select(Organisation).where(Organisation.dicom_cert_sha256 == cert_sha256)
    )
    return await _peer(session, org)
