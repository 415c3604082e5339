"""The pre-call network check: a server-side aiortc echo peer that sends the browser's media back.

The browser offers its camera and microphone (and a data channel); the echo peer answers
with the same tracks sent back through a `MediaRelay`, and echoes every data channel
message, so the page measures what a call would get: frames and audio coming back, the
round trip time, loss and throughput of the path. The path is the call's: the ICE servers
come from `ice.ice_servers`, TURN included.

aiortc does not trickle: the answer carries every candidate of the echo peer (it is sent
once gathering ends). aiortc uses the first STUN and the first TURN URL only, and a STUN
server that does not answer delays the answer by about five seconds.

Each process runs at most `consult_check_max_peers` echo peers; each is closed after
`consult_check_seconds`, when its connection fails, when the same user starts another
check, and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay

from server import keys
from server.consults.ice import IceServers
from server.errors import InvalidInput, TooManyRequests

log = logging.getLogger(__name__)


def configuration(servers: IceServers) -> RTCConfiguration:
    """An aiortc configuration with these ICE servers (aiortc takes the first STUN and TURN)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in servers.servers
        ]
    )


@dataclass(eq=False, slots=True)
class EchoPeer:
    """One check: its peer connection and the task that closes it at the deadline."""

    user_id: int
    pc: RTCPeerConnection
    relay: MediaRelay = field(default_factory=MediaRelay)
    deadline: asyncio.Task[None] | None = None


class EchoPeers:
    """The echo peers of one server process, bounded in number and lifetime."""

    def __init__(self, *, max_peers: int, seconds: float) -> None:
        self.max_peers = max_peers
        self.seconds = seconds
        self.peers: set[EchoPeer] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def answer(self, *, user_id: int, sdp: str, servers: IceServers) -> str:
        """Answer a browser's offer with an echo peer; its SDP (every candidate in it).

        TooManyRequests when this process runs its most checks already; InvalidInput when
        the offer cannot be used.
        """
        for previous in [p for p in self.peers if p.user_id == user_id]:
            await self.close(previous)
        if len(self.peers) >= self.max_peers:
            raise TooManyRequests(
                f"{len(self.peers)} network checks are running on this server, its most; "
                "try again in a minute.",
                retry_after=max(1, math.ceil(self.seconds)),
                details={"max_checks": self.max_peers},
            )
        peer = EchoPeer(user_id=user_id, pc=RTCPeerConnection(configuration(servers)))
        self.peers.add(peer)
        self._wire(peer)
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if not peer.pc.getTransceivers() and peer.pc.sctp is None:
                raise ValueError("it offers no media and no data channel")
            await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        except Exception as failed:
            await self.close(peer)
            raise InvalidInput(f"This offer cannot be answered: {failed}"[:300]) from None
        peer.deadline = asyncio.create_task(self._expire(peer), name="doorstep-check-deadline")
        return str(peer.pc.localDescription.sdp)

    def _wire(self, peer: EchoPeer) -> None:
        pc = peer.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            pc.addTrack(peer.relay.subscribe(track))

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if channel.readyState == "open":
                    channel.send(message)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._close_later(peer)

    async def _expire(self, peer: EchoPeer) -> None:
        await asyncio.sleep(self.seconds)
        self._close_later(peer)

    def _close_later(self, peer: EchoPeer) -> None:
        if peer not in self.peers:
            return
        task = asyncio.ensure_future(self.close(peer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, peer: EchoPeer) -> None:
        """Close one echo peer (it no longer counts against the limit)."""
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        current = asyncio.current_task()
        if peer.deadline is not None and peer.deadline is not current:
            peer.deadline.cancel()
        try:
            await peer.pc.close()
        except Exception:
            log.warning("check: closing an echo peer failed", exc_info=True)

    async def close_all(self) -> None:
        """Shutdown: close every echo peer."""
        for peer in list(self.peers):
            await self.close(peer)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)


async def echo_peers(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: this process's echo peers (keys.CONSULT_CHECKS), closed at shutdown."""
    settings = app[keys.SETTINGS]
    found = EchoPeers(
        max_peers=settings.consult_check_max_peers, seconds=settings.consult_check_seconds
    )
    app[keys.CONSULT_CHECKS] = found
    yield
    with contextlib.suppress(Exception):
        await found.close_all()
