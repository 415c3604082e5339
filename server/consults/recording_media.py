"""A consult recording's media: one aiortc MediaRecorder per received track, then one WebM.

aiortc's MediaRecorder writes every track it is given into one container, with each
frame's own timestamps. The frames of a received track carry RTP timestamps (a random
start, the track's own clock), so audio and video of one container disagree and the
muxer breaks or stalls (aiortc #1203); and a container's tracks must all be known before
its first packet, while a call's tracks arrive (and leave) as peers come and go.

So each received track is recorded on its own, by its own MediaRecorder, into its own
WebM part (`<n>-audio.webm`, `<n>-video.webm`), after its timestamps are rebased onto
the recording's wall clock: the first frame of a track is placed at the moment it arrived
since the recording started, the next ones follow the track's own timestamps from there
(so its rate is kept: browsers stamp frames with their capture time), and a frame that
would not move forward is dropped. Video is put on
the recorder's 1/30 s grid (MediaRecorder encodes VP8 at that time base), audio keeps its
sample clock. When the recording stops, each track is still recorded until it catches up
with the moment of the stop (a few seconds at most, for a server that lags); then the
peer connections are closed and the parts are muxed (packets copied, not encoded
again) into one WebM whose tracks share that clock; the parts are then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 30)
"""The time base of MediaRecorder's VP8 stream (rate=30)."""
CHUNK = 1024 * 1024


class Rebased(MediaStreamTrack):
    """A received track with its timestamps moved onto the recording's clock (see above)."""

    def __init__(self, source: MediaStreamTrack, origin: float) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.origin = origin
        self.frames = 0
        self.last_at = 0.0
        self.ended = asyncio.Event()
        """Set once the source has ended, or has caught up with `until`."""
        self.until: float | None = None
        """Where the recording stops (seconds on its clock): frames up to it are still taken."""
        self._offset: float | None = None
        self._last: int | None = None

    async def recv(self) -> Any:
        """The next frame of the source that moves forward on the recording's clock."""
        while True:
            try:
                frame = await self.source.recv()
            except MediaStreamError:
                self.ended.set()
                raise
            if frame.pts is None or frame.time_base is None:
                continue
            seconds = float(frame.pts * frame.time_base)
            if self._offset is None:
                self._offset = (time.monotonic() - self.origin) - seconds
            at = max(0.0, seconds + self._offset)
            base = VIDEO_TIME_BASE if self.kind == "video" else frame.time_base
            pts = round(at / base)
            if self.until is not None and at >= self.until:
                self.ended.set()
                raise MediaStreamError
            if self._last is not None and pts <= self._last:
                continue
            self._last = pts
            self.last_at = at
            frame.pts = pts
            frame.time_base = base
            self.frames += 1
            return frame

    def stop(self) -> None:
        """Stop this track (the source is the peer connection's to stop)."""
        super().stop()


@dataclass(slots=True)
class Part:
    """One track being recorded into its own file."""

    path: Path
    kind: str
    track: Rebased
    recorder: MediaRecorder


@dataclass(frozen=True, slots=True)
class Muxed:
    """The finished recording file."""

    path: Path
    duration_seconds: float
    tracks: list[str]
    size: int
    sha256: str


class TrackFiles:
    """The parts of one recording in its work folder: a track in, a part file out."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.origin = time.monotonic()
        self.parts: list[Part] = []
        self.stopped = False

    async def add(self, track: MediaStreamTrack) -> None:
        """Record one more received track (audio or video) into its own part."""
        if self.stopped or track.kind not in ("audio", "video"):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.parts) + 1:03d}-{track.kind}.webm"
        rebased = Rebased(track, self.origin)
        recorder = MediaRecorder(str(path), format="webm")
        recorder.addTrack(rebased)
        self.parts.append(Part(path, track.kind, rebased, recorder))
        await recorder.start()

    async def stop(self, *, drain: float = 0.0) -> list[Part]:
        """Stop every part (each file is closed); the parts that hold frames.

        With `drain`, first wait up to that many seconds for every track to catch up with
        the moment of the stop (or end): frames received before it but not yet recorded
        (a busy server lags a little) are kept, later ones are not.
        """
        self.stopped = True
        until = time.monotonic() - self.origin
        for part in self.parts:
            part.track.until = until
        waiting = [asyncio.ensure_future(p.track.ended.wait()) for p in self.parts]
        if waiting and drain > 0:
            await asyncio.wait(waiting, timeout=drain)
        for task in waiting:
            task.cancel()
        for part in self.parts:
            log.info(
                "recording: %s: %d frames, last at %.3f s, stopped at %.3f s, caught up: %s",
                part.path.name,
                part.track.frames,
                part.track.last_at,
                until,
                part.track.ended.is_set(),
            )
        for part in self.parts:
            try:
                await part.recorder.stop()
            except (MediaStreamError, av.FFmpegError, ValueError, OSError):
                log.warning("recording: a part did not close cleanly: %s", part.path, exc_info=True)
        return [p for p in self.parts if p.track.frames > 0 and p.path.exists()]


def _packets(container: Any, index: int) -> Iterator[tuple[float, int, Any]]:
    """(time in seconds, input index, packet) of one part, in its order."""
    stream = container.streams[0]
    for packet in container.demux(stream):
        if packet.dts is None or packet.size == 0:
            continue
        yield float(packet.dts * stream.time_base), index, packet


def mux(parts: list[Path], out: Path) -> Muxed:
    """Copy the parts' packets, in time order, into one WebM at `out`; its figures."""
    inputs = [av.open(str(p)) for p in parts]
    tmp = out.with_suffix(".partial")
    try:
        with av.open(str(tmp), mode="w", format="webm") as output:
            streams = [output.add_stream_from_template(i.streams[0]) for i in inputs]
            kinds = [s.type for s in streams]
            end = 0.0
            for at, index, packet in heapq.merge(
                *(_packets(i, n) for n, i in enumerate(inputs)), key=lambda e: (e[0], e[1])
            ):
                source = inputs[index].streams[0]
                if packet.duration:
                    at += float(packet.duration * source.time_base)
                end = max(end, at)
                packet.stream = streams[index]
                output.mux(packet)
    finally:
        for i in inputs:
            i.close()
    tmp.replace(out)
    digest = hashlib.sha256()
    with out.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return Muxed(
        out, round(end, 3), [str(k) for k in kinds], out.stat().st_size, digest.hexdigest()
    )


async def finish(
    files: TrackFiles,
    out: Path,
    *,
    drain: float = 0.0,
    before_mux: Callable[[], Awaitable[None]] | None = None,
) -> Muxed | None:
    """Stop the parts and mux them into `out` (in a thread); remove the parts. None if empty.

    `before_mux` runs once the parts are closed (the recorder hangs up there).
    """
    parts = await files.stop(drain=drain)
    try:
        if before_mux is not None:
            await before_mux()
        if not parts:
            return None
        return await asyncio.to_thread(mux, [p.path for p in parts], out)
    finally:
        for part in files.parts:
            with contextlib.suppress(OSError):
                part.path.unlink()
        with contextlib.suppress(OSError):
            files.folder.rmdir()
