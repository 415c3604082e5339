"""ICE servers of a consult: TURN REST credentials that a real coturn accepts until they expire."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from server.app import create_app
from server.consults.ice import turn_credential
from server.settings import Settings
from tests.server.consults.helpers import asked, on_duty
from tests.server.consults.turn import TurnClient, coturn, free_udp_block
from tests.support import World, require_tool

SECRET = "turn-shared-secret-of-the-test"
REALM = "doorstep.test"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "consults.md"


def documented_peer_rules() -> list[str]:
    """The peer rules of the coturn configuration in docs/consults.md."""
    block = re.search(r"```ini\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None, "docs/consults.md has no coturn configuration"
    lines = [line.strip() for line in block.group(1).splitlines()]
    rules = [line for line in lines if line.startswith("denied-peer-ip=")]
    assert "no-multicast-peers" in lines
    return [*rules, "no-multicast-peers"]


def _settings(settings: Settings, port: int, **more: object) -> Settings:
    return settings.model_copy(
        update={
            "turn_urls": [f"stun:127.0.0.1:{port}", f"turn:127.0.0.1:{port}?transport=udp"],
            "turn_secret": SecretStr(SECRET),
            **more,
        }
    )


async def test_members_get_turn_credentials_that_coturn_accepts(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    turnserver = require_tool("turnserver")
    port = free_udp_block()
    async with TestClient(TestServer(create_app(_settings(settings, port)))) as client:
        await on_duty(client, world, "cardio")
        consult = await asked(client, world)
        before = datetime.now(UTC)
        response = await client.get(
            f"/api/v1/consults/{consult['id']}/ice", headers=world.auth("cardio")
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        for outsider in ("gp-b", "radio"):
            refused = await client.get(
                f"/api/v1/consults/{consult['id']}/ice", headers=world.auth(outsider)
            )
            assert refused.status == 404, outsider
        assert (await client.get(f"/api/v1/consults/{consult['id']}/ice")).status == 401
        gp = await client.get(f"/api/v1/consults/{consult['id']}/ice", headers=world.auth("gp-a"))
        assert gp.status == 200
    assert set(body) == {"ice_servers", "expires_at", "ice_transport_policy"}
    assert body["ice_transport_policy"] == "all"
    stun, turn = body["ice_servers"]
    assert stun == {"urls": [f"stun:127.0.0.1:{port}"]}
    assert turn["urls"] == [f"turn:127.0.0.1:{port}?transport=udp"]
    expiry, user = turn["username"].split(":")
    assert user == str(world.users["cardio"])
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert int(expiry) == int(expires_at.timestamp())
    assert timedelta(minutes=59) < expires_at - before <= timedelta(hours=1, seconds=2)
    expected = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected

    def against_coturn() -> None:
        with coturn(
            turnserver,
            tmp_path,
            port=port,
            secret=SECRET,
            realm=REALM,
            extra=documented_peer_rules(),
        ):
            issued = TurnClient("127.0.0.1", port)
            try:
                allocated = issued.allocate(turn["username"], turn["credential"])
                assert allocated.ok, allocated
                assert 0x0016 in allocated.attributes  # XOR-RELAYED-ADDRESS
                assert issued.create_permission("8.8.8.8").ok  # a public peer
                for private in ("10.1.2.3", "192.168.1.1", "127.0.0.1", "172.16.0.9"):
                    denied = issued.create_permission(private)
                    assert denied.error_code == 403, (private, denied)
            finally:
                issued.close()
            past = f"{int(datetime.now(UTC).timestamp()) - 60}:{world.users['cardio']}"
            expired = TurnClient("127.0.0.1", port)
            try:
                refused = expired.allocate(past, turn_credential(secret=SECRET, username=past))
                assert refused.error_code == 401, refused
            finally:
                expired.close()
            forged = TurnClient("127.0.0.1", port)
            try:
                wrong = turn_credential(secret="another secret", username=turn["username"])
                refused = forged.allocate(turn["username"], wrong)
                assert refused.error_code == 401, refused
            finally:
                forged.close()

    await asyncio.to_thread(against_coturn)


async def test_no_turn_without_a_secret(settings: Settings, world: World) -> None:
    quiet = _settings(settings, 3478, turn_secret=SecretStr(""))
    async with TestClient(TestServer(create_app(quiet))) as client:
        await on_duty(client, world, "cardio")
        consult = await asked(client, world)
        response = await client.get(
            f"/api/v1/consults/{consult['id']}/ice", headers=world.auth("gp-a")
        )
        body = await response.json()
    assert body["ice_servers"] == [{"urls": ["stun:127.0.0.1:3478"]}]
