"""A peer is an organisation's AE title *and* an address on its list: others get A-ASSOCIATE-RJ.

Linux routes all of 127.0.0.0/8 (and the machine's own addresses) to lo, so an
SCU bound to 127.0.0.2 or to the machine's LAN address is another peer address.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from server.accounts import dicom_peers
from server.settings import Settings
from tests.server.dimse.peers import Listener, attempt, dcmtk, outside_address, set_peers
from tests.server.test_cli import doorstep
from tests.support import World, audit_events, free_port

REJECTED_PERMANENT, SERVICE_USER = 1, 1
CALLING_AE_NOT_RECOGNISED, CALLED_AE_NOT_RECOGNISED = 3, 7


async def test_a_peer_from_an_address_not_on_the_list_is_rejected_and_audited(
    listener: Listener, world: World
) -> None:
    await set_peers(listener, world.orgs["clinic-a"], ["127.0.0.1"])
    refused = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.2")
    assert (refused.established, refused.rejected) == (False, True)
    assert refused.rejection == (REJECTED_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    listed = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.1")
    assert (listed.established, listed.echo) == (True, 0x0000)
    [event] = await audit_events(listener.app, "dicom.associate")
    assert (event.actor, event.object_id, event.outcome) == ("dicom:CLINIC_A", "CLINIC_A", "denied")
    assert (event.org_id, event.client_addr) == (world.orgs["clinic-a"], "127.0.0.2")
    assert json.loads(event.details) == {
        "address": "127.0.0.2",
        "called_ae_title": "DOORSTEP",
        "reason": "address not on the organisation's DICOM peer list",
    }


async def test_listing_the_address_or_its_network_admits_the_peer(
    listener: Listener, world: World
) -> None:
    await set_peers(listener, world.orgs["clinic-a"], ["127.0.0.1", "127.0.0.2"])
    one = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.2")
    assert (one.established, one.echo) == (True, 0x0000)
    await set_peers(listener, world.orgs["clinic-a"], ["127.0.0.0/30"])
    network = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.3")
    assert network.established
    outside = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.4")
    assert outside.rejected
    # The list is the organisation's own: clinic-b (no list) is still admitted on loopback.
    other = await asyncio.to_thread(attempt, listener, "CLINIC_B", bind="127.0.0.4")
    assert other.established
    assert await audit_events(listener.app, "dicom.associate") != []


async def test_doorstep_org_update_takes_effect_at_the_next_association(
    listener: Listener, settings: Settings
) -> None:
    listed = doorstep(settings, "org", "update", "clinic-a", "--dicom-peer", "127.0.0.2")
    assert listed.returncode == 0, listed.stderr
    assert "DICOM peers: 127.0.0.2/32" in listed.stdout
    assert (await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.2")).established
    assert (await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.1")).rejected
    cleared = doorstep(settings, "org", "update", "clinic-a", "--clear-dicom-peers")
    assert cleared.returncode == 0, cleared.stderr
    assert (await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.1")).established


async def test_an_organisation_without_a_list_admits_loopback_peers_only(
    listener: Listener, world: World
) -> None:
    lan = outside_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    loopback = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind="127.0.0.2")
    assert loopback.established
    refused = await asyncio.to_thread(attempt, listener, "CLINIC_A", bind=lan)
    assert refused.rejection == (REJECTED_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    [event] = await audit_events(listener.app, "dicom.associate")
    assert event.client_addr == lan
    assert "only loopback peers" in json.loads(event.details)["reason"]
    await set_peers(listener, world.orgs["clinic-a"], [lan])
    assert (await asyncio.to_thread(attempt, listener, "CLINIC_A", bind=lan)).established


async def test_a_wrong_called_ae_title_is_rejected_and_audited(listener: Listener) -> None:
    refused = await asyncio.to_thread(attempt, listener, "CLINIC_A", called="NOT_US")
    assert refused.rejection == (REJECTED_PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)
    [event] = await audit_events(listener.app, "dicom.associate")
    assert (event.object_id, event.outcome) == ("CLINIC_A", "denied")
    assert json.loads(event.details)["called_ae_title"] == "NOT_US"
    assert json.loads(event.details)["reason"] == "called AE title not recognised"


async def test_dcmtk_shows_the_rejections(listener: Listener, world: World) -> None:
    wrong_called = await dcmtk("echoscu", listener, "CLINIC_A", "-aec", "NOT_US")
    assert wrong_called.startswith("rc=1")
    assert "Called AE Title Not Recognized" in wrong_called
    await set_peers(listener, world.orgs["clinic-a"], ["192.0.2.0/24"])
    wrong_address = await dcmtk("echoscu", listener, "CLINIC_A")
    assert wrong_address.startswith("rc=1")
    assert "Calling AE Title Not Recognized" in wrong_address


class TestDualStack:
    """The listener on "::" sees IPv4 peers as ::ffff:a.b.c.d."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """The DIMSE listener on every IPv6 and IPv4 address of the machine."""
        return settings.model_copy(update={"host": "::", "dicom_port": free_port()})

    async def test_an_ipv4_peer_matches_its_ipv4_network(
        self, listener: Listener, world: World
    ) -> None:
        await set_peers(listener, world.orgs["clinic-a"], ["127.0.0.2/32"])
        mapped = await asyncio.to_thread(
            attempt, listener, "CLINIC_A", host="127.0.0.1", bind="127.0.0.2"
        )
        assert mapped.established
        refused = await asyncio.to_thread(attempt, listener, "CLINIC_A", host="::1", bind="::1")
        assert refused.rejected
        [event] = await audit_events(listener.app, "dicom.associate")
        assert event.client_addr == "::1"


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("127.0.0.1", [], True),
        ("127.9.9.9", [], True),
        ("::1", [], True),
        ("::ffff:127.0.0.1", [], True),
        ("192.0.2.7", [], False),
        ("2001:db8::7", [], False),
        ("192.0.2.7", ["192.0.2.0/24"], True),
        ("::ffff:192.0.2.7", ["192.0.2.0/24"], True),
        ("127.0.0.1", ["192.0.2.0/24"], False),
        ("2001:db8::7", ["2001:db8::/64"], True),
        ("2001:db8:1::7", ["2001:db8::/64"], False),
        ("fe80::1%eth0", ["fe80::/10"], True),
        ("192.0.2.7", ["2001:db8::/64"], False),
        ("not an address", [], False),
    ],
)
def test_address_matching(address: str, networks: list[str], allowed: bool) -> None:
    assert dicom_peers.address_allowed(address, networks) is allowed
