"""A browser call forced through TURN: coturn started by the test with use-auth-secret, a demo
server that hands out TURN REST credentials and asks for iceTransportPolicy "relay"; both
Chromium pages decode each other's video over relay candidates only. (That coturn refuses
expired credentials is tested against the same coturn in tests/server/consults/test_ice.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import running_demo
from tests.e2e.people import two_people
from tests.e2e.test_call import WAIT_MS, _accepted_consult, _frames_grow
from tests.server.consults.turn import coturn, free_udp_block
from tests.support import require_tool

pytestmark = pytest.mark.e2e

SECRET = "relay-test-secret"


async def test_a_call_relayed_through_coturn_only(chromium: Path, tmp_path: Path) -> None:
    turnserver = require_tool("turnserver")
    port = free_udp_block()
    (tmp_path / "coturn").mkdir()
    # Both browsers and the relay are on loopback here: the one peer rule a test needs.
    with (
        coturn(
            turnserver,
            tmp_path / "coturn",
            port=port,
            secret=SECRET,
            realm="doorstep.test",
            extra=["allow-loopback-peers", "verbose"],
        ),
        running_demo(
            tmp_path / "demo",
            {
                "DOORSTEP_TURN_URLS": f"turn:127.0.0.1:{port}?transport=udp",
                "DOORSTEP_TURN_SECRET": SECRET,
                "DOORSTEP_CONSULT_ICE_TRANSPORT_POLICY": "relay",
            },
        ) as (server, _),
    ):
        async with two_people(chromium, server) as (gp, specialist):
            await gp.sign_in("gp.river")
            await specialist.sign_in("dr.heart")
            consult_id = await _accepted_consult(gp, specialist)
            ice = await (
                await gp.page.request.get(f"{server.url}/api/v1/consults/{consult_id}/ice")
            ).json()
            assert ice["ice_transport_policy"] == "relay"
            assert [s["urls"] for s in ice["ice_servers"]] == [
                [f"turn:127.0.0.1:{port}?transport=udp"]
            ]
            host = specialist.page
            await host.goto(f"{server.url}/consults/{consult_id}")
            await host.get_by_role("button", name="Join", exact=True).click()
            page = gp.page
            await page.goto(f"{server.url}/consults/{consult_id}")
            await page.get_by_role("button", name="Join", exact=True).click()
            await host.get_by_role("button", name="Let Dr Gita River in").click()
            await _frames_grow(page)
            await _frames_grow(host)
            for who in (page, host):
                await expect(who.locator(".call-tile").first).to_have_attribute(
                    "data-route", "relay", timeout=WAIT_MS
                )
    log = (tmp_path / "coturn" / "turnserver.log").read_text(errors="replace")
    assert "ALLOCATE processed, success" in log, log[-2000:]
