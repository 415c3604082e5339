"""The pre-call network check: a real aiortc client gets its own media back from the echo peer."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server import keys
from server.app import create_app
from server.settings import Settings
from tests.server.consults.calls import WAIT, Pattern
from tests.support import Client, World


class Checker:
    """A browser stand-in: a test pattern and a data channel offered to the echo peer."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("rtt")
        self.echoed: asyncio.Queue[str] = asyncio.Queue()
        self.track: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.channel.on("message", self.echoed.put_nowait)

        @self.pc.on("track")
        def on_track(track: object) -> None:
            if not self.track.done():
                self.track.set_result(track)

    async def offer(self) -> dict[str, str]:
        """The offer (aiortc gathers every candidate first)."""
        self.pc.addTrack(Pattern(40))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"type": "offer", "sdp": self.pc.localDescription.sdp}

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


async def _post(client: Client, world: World, user: str, body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await client.post("/api/v1/consults/check", json=body, headers=world.auth(user))
    return response.status, await response.json()


async def test_the_echo_peer_sends_the_browser_its_own_frames_and_messages(
    client: Client, world: World
) -> None:
    ice = await client.get("/api/v1/consults/check/ice", headers=world.auth("gp-a"))
    assert ice.status == 200
    assert "ice_servers" in await ice.json()
    checker = Checker()
    try:
        status, answer = await _post(client, world, "gp-a", await checker.offer())
        assert status == 200, answer
        assert answer["type"] == "answer"
        assert "a=candidate" in answer["sdp"], "aiortc answers with every candidate"
        await checker.pc.setRemoteDescription(RTCSessionDescription(**answer))
        track = await asyncio.wait_for(checker.track, WAIT)
        frames = [await asyncio.wait_for(track.recv(), WAIT) for _ in range(5)]  # type: ignore[attr-defined]
        assert all(f.width == 160 and f.height == 120 for f in frames)
        shades = [int(f.to_ndarray(format="rgb24")[60, 80, 0]) for f in frames]
        assert all(abs(s - 40) < 80 for s in shades), shades  # our pattern (40 + count), not black
        for _ in range(600):
            if checker.channel.readyState == "open":
                break
            await asyncio.sleep(0.05)
        checker.channel.send(json.dumps({"t": 1}))
        assert json.loads(await asyncio.wait_for(checker.echoed.get(), WAIT)) == {"t": 1}
        assert len(client.app[keys.CONSULT_CHECKS].peers) == 1
    finally:
        await checker.close()
    checks = client.app[keys.CONSULT_CHECKS]
    for _ in range(600):
        if not checks.peers:
            break
        await asyncio.sleep(0.05)
    assert not checks.peers, "the echo peer closes when the browser hangs up"


async def test_checks_are_bounded_per_process_and_in_time(settings: Settings, world: World) -> None:
    few = settings.model_copy(update={"consult_check_max_peers": 1, "consult_check_seconds": 1.0})
    async with TestClient(TestServer(create_app(few))) as client:
        first, second, again = Checker(), Checker(), Checker()
        try:
            status, _ = await _post(client, world, "gp-a", await first.offer())
            assert status == 200
            status, refused = await _post(client, world, "cardio", await second.offer())
            assert status == 429, refused
            assert "network checks are running" in refused["error"]["message"]
            status, _ = await _post(client, world, "gp-a", await again.offer())
            assert status == 200, "a user's new check replaces their previous one"
            checks = client.app[keys.CONSULT_CHECKS]
            assert len(checks.peers) == 1
            for _ in range(600):
                if not checks.peers:
                    break
                await asyncio.sleep(0.05)
            assert not checks.peers, "an echo peer is closed after consult_check_seconds"
            status, _ = await _post(client, world, "cardio", await second.offer())
            assert status == 200
        finally:
            for checker in (first, second, again):
                await checker.close()
    assert not client.app[keys.CONSULT_CHECKS].peers, "closed at shutdown"


async def test_the_check_is_for_signed_in_doctors_and_needs_an_offer(
    client: Client, world: World
) -> None:
    anonymous = await client.post("/api/v1/consults/check", json={"type": "offer", "sdp": "v=0"})
    assert anonymous.status == 401
    status, _ = await _post(client, world, "kiosk", {"type": "offer", "sdp": "v=0"})
    assert status == 403
    status, _ = await _post(client, world, "gp-a", {"type": "answer", "sdp": "v=0"})
    assert status == 422
    status, bad = await _post(client, world, "gp-a", {"type": "offer", "sdp": "not sdp"})
    assert status == 422, bad
    assert not client.app[keys.CONSULT_CHECKS].peers
