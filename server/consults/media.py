"""What a Python peer of a call streams, and how it reads the call's ICE servers with aiortc.

Sources: a moving test pattern (default), a silent audio track, a media file or a
camera (V4L2), each peer connection getting its own tracks. ICE: aiortc uses only the
first STUN URL and the first TURN URL (udp or tcp) of its configuration, and Google's
public STUN server when given none, so `rtc_configuration` picks those and always
passes a list.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
PATTERN_SIZE = (320, 240)
"""Width and height of the test pattern's frames."""
CAMERA_OPTIONS = {"video_size": "640x480", "framerate": "30"}


# What the client streams ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """What the client streams: `pattern`, `file` (a media file) or `camera` (a V4L2 device)."""

    kind: str = "pattern"
    path: str | None = None
    audio: bool = False
    """For the pattern: add a silent audio track too."""

    @classmethod
    def parse(cls, text: str) -> Source:
        """`pattern`, `file:PATH` or `camera:DEVICE` (e.g. camera:/dev/video0); ValueError else."""
        if text == "pattern":
            return cls()
        kind, _, path = text.partition(":")
        if kind in ("file", "camera") and path:
            return cls(kind, path)
        raise ValueError(f"a source is pattern, file:PATH or camera:DEVICE, not {text!r}")


class PatternTrack(VideoStreamTrack):
    """A moving test pattern: a bright bar that sweeps across a gradient, one step a frame."""

    def __init__(self, *, size: tuple[int, int] = PATTERN_SIZE, shade: int = 0) -> None:
        super().__init__()
        width, height = size
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        self._base = np.repeat(np.repeat(ramp[None, :, None], height, 0), 3, 2)
        self._base[..., 2] = (self._base[..., 2].astype(np.int32) + shade) % 256
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        """The next frame, paced at the standard video clock."""
        pts, time_base = await self.next_timestamp()
        self._count += 1
        pixels = self._base.copy()
        width = pixels.shape[1]
        bar = (self._count * 4) % width
        pixels[:, bar : bar + 8, :] = 255
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class SilenceTrack(MediaStreamTrack):
    """20 ms frames of silence (48 kHz mono), paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of silence."""
        samples = 960
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += samples
            wait = self._start + self._pts / 48000 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


class Media:
    """The local media of one client: fresh tracks for each peer connection, stopped at the end."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._player: MediaPlayer | None = None
        self._relay = MediaRelay()
        self._made: list[MediaStreamTrack] = []
        if source.kind == "file":
            self._player = MediaPlayer(source.path, loop=True)
        elif source.kind == "camera":
            self._player = MediaPlayer(source.path, format="v4l2", options=dict(CAMERA_OPTIONS))
        elif source.kind != "pattern":
            raise ValueError(f"unknown source kind {source.kind!r}")

    def tracks(self, shade: int = 0) -> list[MediaStreamTrack]:
        """The tracks to add to one more peer connection (audio first, as browsers order them)."""
        found: list[MediaStreamTrack] = []
        if self._player is None:
            if self.source.audio:
                found.append(SilenceTrack())
            found.append(PatternTrack(shade=shade))
        else:
            for track in (self._player.audio, self._player.video):
                if track is not None:
                    found.append(self._relay.subscribe(track, buffered=False))
        self._made.extend(found)
        return found

    def close(self) -> None:
        """Stop every track made, and the player (its decoding thread) behind them."""
        for track in self._made:
            track.stop()
        if self._player is not None:
            for played in (self._player.audio, self._player.video):
                if played is not None:
                    played.stop()


# ICE servers ------------------------------------------------------------------------------


def is_loopback(url: str) -> bool:
    """True when the server's URL names a loopback host."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def rtc_configuration(
    ice_servers: list[Mapping[str, Any]],
    *,
    stun: bool = True,
    turn: bool = True,
    relay_only: bool = False,
) -> RTCConfiguration:
    """The aiortc configuration of `GET …/ice`'s servers: the first STUN and first TURN URL.

    aiortc would use only those anyway (and Google's STUN server when given none, so the
    list is always passed). `relay_only` is `iceTransportPolicy: "relay"`.
    """
    stun_url: str | None = None
    turn_server: RTCIceServer | None = None
    for server in ice_servers:
        urls = server.get("urls")
        for url in [urls] if isinstance(urls, str) else list(urls or []):
            if not isinstance(url, str):
                continue
            lowered = url.lower()
            if stun and stun_url is None and lowered.startswith("stun:"):
                stun_url = url
            usable_turn = lowered.startswith("turn:") and "transport=" not in lowered
            usable_turn |= lowered.startswith("turn:") and (
                "transport=udp" in lowered or "transport=tcp" in lowered
            )
            usable_turn |= lowered.startswith("turns:") and "transport=udp" not in lowered
            if turn and turn_server is None and usable_turn:
                turn_server = RTCIceServer(
                    url, username=server.get("username"), credential=server.get("credential")
                )
    found = [RTCIceServer(stun_url)] if stun_url else []
    if turn_server is not None:
        found.append(turn_server)
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=found, iceTransportPolicy=policy)


def ice_candidate(data: Mapping[str, Any]) -> RTCIceCandidate | None:
    """aiortc's candidate of a relayed `candidate` object; None for an empty or bad one."""
    text = data.get("candidate")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        found = candidate_from_sdp(text.strip().removeprefix("candidate:"))
    except (AssertionError, ValueError, IndexError):
        log.info("consult client: ignoring a candidate aiortc cannot read: %.80s", text)
        return None
    mid, index = data.get("sdpMid"), data.get("sdpMLineIndex")
    found.sdpMid = mid if isinstance(mid, str) else None
    found.sdpMLineIndex = index if isinstance(index, int) else None
    if found.sdpMid is None and found.sdpMLineIndex is None:
        found.sdpMLineIndex = 0
    return found


def ice_ufrags(sdp: str) -> set[str]:
    """The ICE usernames (ufrag) of a session description."""
    prefix = "a=ice-ufrag:"
    return {line[len(prefix) :].strip() for line in sdp.splitlines() if line.startswith(prefix)}


def restarts_ice(current: RTCSessionDescription | None, offer: str) -> bool:
    """True when an offer changes the ICE credentials of the remote description (a restart)."""
    return current is not None and ice_ufrags(current.sdp) != ice_ufrags(offer)
