"""DICOM TLS (PS3.15 Annex B): client certificates from the configured CA, pinned to orgs."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.dimse import tls
from server.settings import Settings
from tests.server.dimse.certificates import Issued, authority, client_context, issue
from tests.server.dimse.peers import Attempt, Listener, attempt, dcmtk, set_peers
from tests.support import World, audit_events

CALLING_AE_NOT_RECOGNISED = 3


@dataclass(frozen=True)
class Pki:
    """The network's DICOM CA with its certificates, and a stranger's CA."""

    ca: Issued
    server: Issued
    clinic_a: Issued  # pinned to clinic-a
    unpinned: Issued  # from the same CA, pinned to nobody
    foreign: Issued  # CN=CLINIC_A, from another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made once for this module."""
    folder = tmp_path_factory.mktemp("pki")
    ca = authority(folder, "doorstep-dicom-ca")
    other = authority(folder, "someone-elses-ca")
    return Pki(
        ca=ca,
        server=issue(folder, ca, "doorstep", server=True),
        clinic_a=issue(folder, ca, "CLINIC_A"),
        unpinned=issue(folder, ca, "UNPINNED"),
        foreign=issue(folder, other, "CLINIC_A-foreign"),
    )


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    """The DIMSE listener speaking TLS, requiring client certificates from the network's CA."""
    return settings.model_copy(
        update={
            "dicom_tls_cert": pki.server.cert,
            "dicom_tls_key": pki.server.key,
            "dicom_tls_ca": pki.ca.cert,
        }
    )


@pytest.fixture
async def pinned(listener: Listener, world: World, pki: Pki) -> Listener:
    """clinic-a lists only 127.0.0.1 and has its client certificate pinned."""
    await set_peers(listener, world.orgs["clinic-a"], ["127.0.0.1"], pki.clinic_a.sha256)
    return listener


def _tls(
    listener: Listener, calling: str, pki: Pki, client: Issued | None, bind: str = "127.0.0.2"
) -> Attempt:
    return attempt(
        listener, calling, bind=bind, tls_args=(client_context(pki.ca, client), "localhost")
    )


async def test_a_pinned_client_certificate_admits_its_organisation_from_any_address(
    pinned: Listener, pki: Pki
) -> None:
    admitted = await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, pki.clinic_a)
    assert (admitted.established, admitted.echo) == (True, 0x0000)
    assert await audit_events(pinned.app, "dicom.associate") == []


async def test_no_client_certificate_or_one_from_another_ca_fails_the_handshake(
    pinned: Listener, pki: Pki
) -> None:
    for client in (None, pki.foreign):
        failed = await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, client, "127.0.0.1")
        assert (failed.established, failed.rejected) == (False, False), client
    plain = await asyncio.to_thread(attempt, pinned, "CLINIC_A")
    assert not plain.established
    assert (await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, pki.clinic_a)).established


async def test_an_unpinned_certificate_leaves_the_address_as_the_credential(
    pinned: Listener, pki: Pki
) -> None:
    away = await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, pki.unpinned)
    assert away.rejection == (1, 1, CALLING_AE_NOT_RECOGNISED)
    listed = await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, pki.unpinned, "127.0.0.1")
    assert listed.established


async def test_a_pinned_certificate_speaks_only_for_its_own_ae_title(
    pinned: Listener, pki: Pki
) -> None:
    refused = await asyncio.to_thread(_tls, pinned, "CLINIC_B", pki, pki.clinic_a, "127.0.0.1")
    assert refused.rejection == (1, 1, CALLING_AE_NOT_RECOGNISED)
    [event] = await audit_events(pinned.app, "dicom.associate")
    assert (event.object_id, event.outcome) == ("CLINIC_B", "denied")
    details = json.loads(event.details)
    assert details["certificate_sha256"] == pki.clinic_a.sha256
    assert "another organisation" in details["reason"]


async def test_a_silent_connection_does_not_stall_the_listener(pinned: Listener, pki: Pki) -> None:
    with socket.create_connection((pinned.host, pinned.port)):  # never says ClientHello
        admitted = await asyncio.to_thread(_tls, pinned, "CLINIC_A", pki, pki.clinic_a)
    assert admitted.established


async def test_dcmtk_echoscu_over_tls(pinned: Listener, pki: Pki) -> None:
    client = pki.clinic_a
    tls_options = ("+tls", str(client.key), str(client.cert), "+cf", str(pki.ca.cert))
    assert (await dcmtk("echoscu", pinned, "CLINIC_A", *tls_options)).startswith("rc=0")
    assert not (await dcmtk("echoscu", pinned, "CLINIC_A")).startswith("rc=0")


@pytest.mark.parametrize(
    "given",
    [
        {"dicom_tls_cert": Path("server.crt")},
        {"dicom_tls_key": Path("server.key")},
        {"dicom_tls_ca": Path("ca.crt")},
    ],
    ids=["cert-only", "key-only", "ca-only"],
)
def test_a_half_configuration_is_refused(given: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="DOORSTEP_DICOM_TLS_"):
        tls.server_context(Settings(**given))
