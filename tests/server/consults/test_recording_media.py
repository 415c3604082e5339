"""The recording's media: tracks with unrelated RTP-like clocks come out aligned (aiortc #1203).

A received track's frames carry RTP timestamps with a random start, audio at 48 kHz and
video at 90 kHz; written as they are into one container, audio and video disagree by hours.
Here a video track starting at 3e9/90000 s and an audio track starting at 1.2e8/48000 s,
the audio joining a second later, are recorded by TrackFiles and muxed: both tracks start
where their first frame arrived and end together, within a frame or two.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from server.consults.recording_media import TrackFiles, finish

SECONDS = 2.5


class Clocked(MediaStreamTrack):
    """Frames in real time with RTP-like timestamps from a far-off start, until stopped."""

    def __init__(self, kind: str, start: int) -> None:
        super().__init__()
        self.kind = kind
        self.start = start
        self.rate = 90_000 if kind == "video" else 48_000
        self.step = 3000 if kind == "video" else 960  # 30 frames/s, 20 ms of audio
        self.count = 0
        self.began: float | None = None

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.began is None:
            self.began = time.monotonic()
        due = self.began + self.count * self.step / self.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame: av.VideoFrame | av.AudioFrame
        if self.kind == "video":
            pixels = np.full((120, 160, 3), self.count % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        else:
            samples = np.zeros((1, self.step * 2), dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
            frame.sample_rate = 48_000
        frame.pts = self.start + self.count * self.step
        frame.time_base = fractions.Fraction(1, self.rate)
        self.count += 1
        return frame


async def test_tracks_of_unrelated_clocks_are_muxed_onto_one_timeline(tmp_path: Path) -> None:
    files = TrackFiles(tmp_path / "parts")
    video, audio = Clocked("video", 3_000_000_000), Clocked("audio", 123_456_789)
    await files.add(video)
    await asyncio.sleep(1.0)
    await files.add(audio)
    await asyncio.sleep(SECONDS)
    stopping = time.monotonic()
    made = await finish(files, tmp_path / "out.webm", drain=2.0)
    video.stop()
    audio.stop()
    assert made is not None
    assert sorted(made.tracks) == ["audio", "video"]
    assert not (tmp_path / "parts").exists(), "the parts are removed"
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    with av.open(str(made.path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            at = float(packet.pts * packet.time_base)
            kind = packet.stream.type
            first.setdefault(kind, at)
            last[kind] = at
    # Where each track began, on the recording's clock: when its first frame came (about a
    # second apart; on a busy machine the recorder may take the frames a little later).
    assert video.began is not None
    assert audio.began is not None
    began = {"video": video.began - files.origin, "audio": audio.began - files.origin}
    assert abs(first["video"] - began["video"]) < 0.3, (first, began)
    assert abs(first["audio"] - began["audio"]) < 0.3, (first, began)
    assert began["audio"] > began["video"], began  # the audio joined later
    assert abs(last["audio"] - last["video"]) < 0.2, last
    assert abs(made.duration_seconds - (stopping - files.origin)) < 0.5, made
