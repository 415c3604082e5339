"""Helpers of the signaling tests: a signaling socket client, aiortc peers, an accepted consult."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import av
import numpy as np
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)

from tests.server.consults.helpers import act, asked, on_duty
from tests.support import Client, World

WAIT = 60.0
"""How long a test waits for a message or a frame before it fails (a hang guard, not a timing)."""


async def accepted_consult(client: Client, world: World) -> int:
    """A consult of gp-a's clinic on alice, accepted by cardio; its id."""
    await on_duty(client, world, "cardio")
    consult = await asked(client, world)
    status, body = await act(client, world, consult["id"], "accept", "cardio")
    assert status == 200, body
    return int(consult["id"])


class Signal:
    """One signaling socket: send messages, wait for the next one of a type."""

    def __init__(self, socket: ClientWebSocketResponse) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []
        self.peer = ""

    @classmethod
    async def open(
        cls, http: Client | ClientSession, consult_id: int, headers: Mapping[str, str]
    ) -> Signal:
        """Connect to a consult's signaling socket (WSServerHandshakeError when refused)."""
        socket = await http.ws_connect(f"/api/v1/consults/{consult_id}/signal", headers=headers)
        return cls(socket)

    async def send(self, kind: str, **fields: Any) -> None:
        """Send one message of this type."""
        await self.socket.send_str(json.dumps({"type": kind, **fields}))

    async def receive(self) -> dict[str, Any] | None:
        """The next message; None once the socket is closed."""
        frame = await asyncio.wait_for(self.socket.receive(), WAIT)
        if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return None
        assert frame.type == WSMsgType.TEXT, frame
        message: dict[str, Any] = json.loads(frame.data)
        self.seen.append(message)
        return message

    async def next(self, kind: str, **match: Any) -> dict[str, Any]:
        """The next message of this type (and these fields), skipping others."""
        while True:
            message = await self.receive()
            assert message is not None, f"closed waiting for {kind} (code {self.socket.close_code})"
            if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                return message

    async def join(self, role: str) -> dict[str, Any]:
        """Send join; the welcome (asserting the role), remembering my peer id."""
        await self.send("join")
        welcome = await self.next("welcome")
        assert welcome["role"] == role, welcome
        self.peer = welcome["peer"]
        return welcome

    async def peers_become(self, *peers: str) -> list[dict[str, Any]]:
        """Wait for a `peers` message listing exactly these peer ids; its list."""
        wanted = sorted(peers)
        while True:
            message = await self.next("peers")
            if sorted(p["peer"] for p in message["peers"]) == wanted:
                found: list[dict[str, Any]] = message["peers"]
                return found

    async def closed(self) -> int | None:
        """Read until the server closes the socket; its close code."""
        while await self.receive() is not None:
            pass
        return self.socket.close_code

    async def close(self) -> None:
        """Close from the client side."""
        await self.socket.close()


class Pattern(VideoStreamTrack):
    """A moving test pattern: 160x120 frames whose shade changes every frame."""

    def __init__(self, shade: int) -> None:
        super().__init__()
        self.shade = shade
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        """The next frame."""
        pts, time_base = await self.next_timestamp()
        self.count += 1
        pixels = np.full((120, 160, 3), (self.shade + self.count) % 256, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class VideoPeer:
    """An aiortc peer with test-pattern video tracks and no STUN/TURN (host candidates only)."""

    def __init__(self, *, tracks: int = 1, shade: int = 0) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.remote: list[MediaStreamTrack] = []
        self._track = asyncio.Event()
        self.tracks = tracks
        self.shade = shade

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.remote.append(track)
                self._track.set()

    async def offer(self) -> str:
        """Add the tracks, create the offer; its SDP with every candidate (aiortc gathers first)."""
        for n in range(self.tracks):
            self.pc.addTrack(Pattern(self.shade + n))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> str:
        """Take an offer, add the tracks, answer; the answer's SDP."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for n in range(self.tracks):
            self.pc.addTrack(Pattern(self.shade + n))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        """Take the answer to our offer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def frames(self, count: int) -> list[av.VideoFrame]:
        """Receive this many decoded frames of the first remote video track."""
        await asyncio.wait_for(self._track.wait(), WAIT)
        track = self.remote[0]
        return [await asyncio.wait_for(track.recv(), WAIT) for _ in range(count)]

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


async def call(gp: Signal, host: Signal, *, tracks: int = 1) -> tuple[VideoPeer, VideoPeer, str]:
    """The admitted GP offers to the host, the host answers: both aiortc peers and the offer SDP."""
    caller, callee = VideoPeer(tracks=tracks, shade=10), VideoPeer(tracks=1, shade=200)
    offer = await caller.offer()
    await gp.send("offer", to=host.peer, sdp=offer)
    received = await host.next("offer")
    assert received["from"] == gp.peer
    assert received["sdp"] == offer
    await host.send("answer", to=gp.peer, sdp=await callee.answer(received["sdp"]))
    answered = await gp.next("answer")
    assert answered["from"] == host.peer
    await caller.accept(answered["sdp"])
    await gp.send("candidate", to=host.peer, candidate=None)
    end = await host.next("candidate")
    assert end == {"type": "candidate", "from": gp.peer, "candidate": None}
    return caller, callee, offer


async def guest_signal(client: Client, world: World, consult_id: int, label: str) -> Signal:
    """A guest of the consult (invited by gp-a, link opened) on the signaling socket, joined
    and waiting in the lobby."""
    invited = await client.post(
        f"/api/v1/consults/{consult_id}/guests", json={"label": label}, headers=world.auth("gp-a")
    )
    assert invited.status == 201, await invited.text()
    path = "/" + (await invited.json())["url"].split("://", 1)[1].split("/", 1)[1]
    client.session.cookie_jar.clear()
    opened = await client.get(path, allow_redirects=False)
    assert opened.status == 303, await opened.text()
    credential = opened.cookies["doorstep_guest"].value
    client.session.cookie_jar.clear()
    guest = await Signal.open(client, consult_id, {"Authorization": f"Guest {credential}"})
    await guest.join("guest")
    await guest.next("lobby")
    return guest
