"""Consented recording: two aiortc doctors in a call, the server's recorder joins, a WebM comes out.

The recorder is a real aiortc peer in the room; the doctors answer its offers with a test
pattern and audio stamped with their capture time, as a browser would. The file is opened
with PyAV: a video and an audio track of each doctor, and a duration within TOLERANCE
seconds of the time recorded.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import ClientSession
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server import keys
from server.settings import Settings
from tests.server.consults.calls import Pattern, Signal, VideoPeer, accepted_consult, call
from tests.server.consults.helpers import act, consult
from tests.server.reading.test_concurrency import two_servers  # noqa: F401  (a fixture)
from tests.support import Client, World, audit_trail

RECORD_SECONDS = 4.0
TOLERANCE = 2.0
"""How far the file's duration may be from the time between the start and the end (seconds):
the recorder's peer connections need a moment to connect, and the end reaches it through the
event bus."""


async def _admitted(client: Client, world: World, consult_id: int) -> tuple[Signal, Signal]:
    """cardio (host) in the room, gp-a admitted: (gp, host); the consult is live."""
    host = await Signal.open(client, consult_id, world.auth("cardio"))
    await host.join("host")
    gp = await Signal.open(client, consult_id, world.auth("gp-a"))
    await gp.join("participant")
    await host.next("knock")
    await host.send("admit", peer=gp.peer)
    await gp.peers_become(gp.peer, host.peer)
    await host.peers_become(gp.peer, host.peer)
    for _ in range(600):
        if (await consult(client, world, consult_id))["status"] == "live":
            break
        await asyncio.sleep(0.05)
    return gp, host


async def _consent(
    client: Client, world: World, consult_id: int, user: str, **body: Any
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/api/v1/consults/{consult_id}/recording",
        json={"consent": True, **body},
        headers=world.auth(user),
    )
    return response.status, await response.json()


class Camera(Pattern):
    """The test pattern stamped with its capture time, as a browser's camera is: a busy test
    process sends fewer frames, but their timestamps keep to the clock."""

    began: float | None = None

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Wait a frame's time; the time since the first frame, in 1/90000 s."""
        if self.began is None:
            self.began = time.monotonic()
        else:
            await asyncio.sleep(1 / 30)
        return int((time.monotonic() - self.began) * 90_000), fractions.Fraction(1, 90_000)


class Microphone(MediaStreamTrack):
    """Quiet audio, 20 ms frames at 48 kHz stamped with their capture time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.began: float | None = None
        self.last = -960

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms (later than the last one, stamped with the clock)."""
        if self.began is None:
            self.began = time.monotonic()
        else:
            await asyncio.sleep(0.02)
        pts = max(self.last + 960, int((time.monotonic() - self.began) * 48_000))
        self.last = pts
        samples = np.zeros((1, 960 * 2), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, 48_000)
        return frame


class Sender:
    """A doctor's media for the recorder: answers its offer with a test pattern and audio."""

    def __init__(self, shade: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.shade = shade

    async def answer(self, signal: Signal) -> str:
        """Take the recorder's offer on this socket and answer it; the recorder's peer id."""
        offer = await signal.next("offer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        self.pc.addTrack(Camera(self.shade))
        self.pc.addTrack(Microphone())
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await signal.send("answer", to=offer["from"], sdp=self.pc.localDescription.sdp)
        await signal.send("candidate", to=offer["from"], candidate=None)
        return str(offer["from"])

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


async def _recorder_in(signal: Signal) -> str:
    """Wait for a `peers` listing the recorder; its peer id."""
    while True:
        message = await signal.next("peers")
        found = [p for p in message["peers"] if p["role"] == "recorder"]
        if found:
            assert found[0]["name"] == "Recorder"
            return str(found[0]["peer"])


async def _file(client: Client, world: World, consult_id: int, user: str) -> bytes:
    """GET the recording once it is finished (409 `finishing` before); its bytes."""
    for _ in range(1200):
        response = await client.get(
            f"/api/v1/consults/{consult_id}/recording", headers=world.auth(user)
        )
        if response.status == 200:
            assert response.content_type == "video/webm"
            return await response.read()
        body = await response.json()
        assert response.status == 409, body
        assert body["error"]["details"].get("finishing"), body
        await asyncio.sleep(0.05)
    raise AssertionError("the recording was not finished")


def _recordings(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "recordings"
    return sorted(folder.rglob("*")) if folder.exists() else []


async def test_both_consent_the_recorder_records_the_call_into_a_playable_file(
    client: Client, world: World, settings: Settings, tmp_path: Path
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, world, consult_id)
    senders = [Sender(30), Sender(220)]
    peers: list[VideoPeer] = []
    try:
        caller, callee, _ = await call(gp, host)
        peers = [caller, callee]
        assert len(await callee.frames(3)) == 3
        status, state = await _consent(client, world, consult_id, "gp-a", patient_consent=True)
        assert status == 200, state
        assert state["recording"] is False
        assert state["gp_consent"]["by"] == "gp-a"
        assert state["patient_consent"] is True
        assert _recordings(settings) == [], "nothing is written before both consented"
        status, state = await _consent(client, world, consult_id, "cardio")
        assert status == 200, state
        started = time.monotonic()
        assert state["recording"] is True
        assert state["specialist_consent"]["by"] == "cardio"
        recorder = await _recorder_in(gp)
        assert await _recorder_in(host) == recorder
        assert await senders[0].answer(gp) == recorder
        assert await senders[1].answer(host) == recorder
        await asyncio.sleep(RECORD_SECONDS)
        ended, _ = await act(client, world, consult_id, "end", "cardio")
        stopped = time.monotonic()
        assert ended == 200
    finally:
        for peer in [*peers, *senders]:
            await peer.close()
    data = await _file(client, world, consult_id, "gp-a")
    path = tmp_path / "call.webm"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "audio", "video", "video"], kinds
        video = container.streams.video[0]
        frames = []
        for frame in container.decode(video):
            frames.append(frame)
            if len(frames) == 5:
                break
        assert len(frames) == 5
        assert {(f.width, f.height) for f in frames} == {(160, 120)}
        duration = container.duration / 1_000_000 if container.duration else 0.0
    assert abs(duration - (stopped - started)) < TOLERANCE, (duration, stopped - started)
    response = await client.get(
        f"/api/v1/consults/{consult_id}/recording/state", headers=world.auth("cardio")
    )
    state = await response.json()
    assert state["available"] is True
    assert state["stop_reason"] == "ended"
    assert state["tracks"] == kinds or sorted(state["tracks"]) == kinds
    assert abs(state["duration_seconds"] - duration) < 0.5
    assert [p.name for p in _recordings(settings)] == [f"consult-{consult_id}.webm"]
    actions = [a for a, _, _ in await audit_trail(client.app, "consult.recording.consent")]
    assert actions == ["gp-a", "cardio"]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.recording.start")] == ["cardio"]
    stops = await audit_trail(client.app, "consult.recording.stop")
    assert [a for a, _, _ in stops] == ["consult-recorder"]
    assert [a for a, _, _ in await audit_trail(client.app, "consult.recording.view")] == ["gp-a"]


async def test_one_consent_records_nothing(
    client: Client, world: World, settings: Settings
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, world, consult_id)
    status, state = await _consent(client, world, consult_id, "cardio")
    assert status == 200
    assert state["recording"] is False
    again, state = await _consent(client, world, consult_id, "cardio")
    assert again == 200
    assert state["recording"] is False
    assert not client.app[keys.CONSULT_RECORDERS].running
    response = await client.get(
        f"/api/v1/consults/{consult_id}/recording", headers=world.auth("gp-a")
    )
    assert response.status == 409, "not before the consult ended"
    ended, _ = await act(client, world, consult_id, "end", "gp-a")
    assert ended == 200
    assert await gp.closed() == 1000
    assert await host.closed() == 1000
    response = await client.get(
        f"/api/v1/consults/{consult_id}/recording", headers=world.auth("gp-a")
    )
    body = await response.json()
    assert response.status == 409
    assert body["error"]["details"] == {"recorded": False}
    assert "recorder" not in [
        p["role"] for m in gp.seen if m["type"] == "peers" for p in m["peers"]
    ]
    assert _recordings(settings) == [], "no media is written when recording is off"
    assert await audit_trail(client.app, "consult.recording.start") == []


async def test_members_only_and_the_patient_must_consent(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    for stranger in ("gp-b", "radio"):
        status, body = await _consent(client, world, consult_id, stranger)
        assert status == 404, body
        for path in ("recording", "recording/state"):
            response = await client.get(
                f"/api/v1/consults/{consult_id}/{path}", headers=world.auth(stranger)
            )
            assert response.status == 404
    status, _ = await _consent(client, world, consult_id, "kiosk")
    assert status == 403
    status, body = await _consent(client, world, consult_id, "gp-a", patient_consent=False)
    assert status == 422
    assert body["error"]["message"] == "Recording needs the patient's consent."
    state = await client.get(
        f"/api/v1/consults/{consult_id}/recording/state", headers=world.auth("gp-a")
    )
    assert (await state.json())["gp_consent"] is None
    status, body = await _consent(client, world, consult_id + 1000, "gp-a")
    assert status == 404


async def test_a_withdrawn_consent_stops_the_recording(
    client: Client, world: World, settings: Settings
) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, world, consult_id)
    senders = [Sender(30), Sender(220)]
    try:
        await _consent(client, world, consult_id, "gp-a")
        status, state = await _consent(client, world, consult_id, "cardio")
        assert state["recording"] is True
        recorder = await _recorder_in(gp)
        await _recorder_in(host)
        await senders[0].answer(gp)
        await senders[1].answer(host)
        await asyncio.sleep(2.0)
        response = await client.post(
            f"/api/v1/consults/{consult_id}/recording",
            json={"consent": False},
            headers=world.auth("gp-a"),
        )
        state = await response.json()
        assert response.status == 200, state
        assert state["gp_consent"] is None
        assert state["patient_consent"] is False
        await gp.peers_become(gp.peer, host.peer)  # the recorder left the room
        assert recorder not in [p["peer"] for p in gp.seen[-1]["peers"]]
        await client.app[keys.CONSULT_RECORDERS].wait(consult_id)
        found = await client.get(
            f"/api/v1/consults/{consult_id}/recording/state", headers=world.auth("gp-a")
        )
        state = await found.json()
        assert state["recording"] is False
        assert state["stop_reason"] == "withdrawn"
        status, _ = await _consent(client, world, consult_id, "gp-a")
        assert status == 409, "one recording per consult"
    finally:
        for sender in senders:
            await sender.close()
    ended, _ = await act(client, world, consult_id, "end", "gp-a")
    assert ended == 200
    data = await _file(client, world, consult_id, "cardio")
    assert data[:4] == b"\x1a\x45\xdf\xa3", "an EBML (WebM) file"
    assert [p.name for p in _recordings(settings)] == [f"consult-{consult_id}.webm"]


async def test_consent_before_the_call_starts_once_live_and_an_empty_room_stops_it(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    _, state = await _consent(client, world, consult_id, "gp-a")
    status, state = await _consent(client, world, consult_id, "cardio")
    assert status == 200
    assert state["recording"] is False, "the call is not live yet"
    assert state["gp_consent"] is not None
    gp, host = await _admitted(client, world, consult_id)
    senders = [Sender(30), Sender(220)]
    try:
        status, state = await _consent(client, world, consult_id, "cardio")
        assert state["recording"] is True, "sent again once live, it starts"
        await _recorder_in(gp)
        await _recorder_in(host)
        await senders[0].answer(gp)
        await senders[1].answer(host)
        await asyncio.sleep(1.0)
        for signal in (gp, host):
            await signal.send("leave")
            assert await signal.closed() == 1000
        await client.app[keys.CONSULT_RECORDERS].wait(consult_id)
    finally:
        for sender in senders:
            await sender.close()
    found = await client.get(
        f"/api/v1/consults/{consult_id}/recording/state", headers=world.auth("gp-a")
    )
    state = await found.json()
    assert state["recording"] is False
    assert state["stop_reason"] == "empty"
    assert state["available"] is False, "given once the consult has ended"
    assert (await consult(client, world, consult_id))["status"] == "live"
    ended, _ = await act(client, world, consult_id, "end", "gp-a")
    assert ended == 200
    assert (await _file(client, world, consult_id, "gp-a"))[:4] == b"\x1a\x45\xdf\xa3"


async def test_consents_at_once_start_exactly_one_recorder(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    gp, host = await _admitted(client, world, consult_id)
    answers = await asyncio.gather(
        _consent(client, world, consult_id, "gp-a"), _consent(client, world, consult_id, "cardio")
    )
    assert [status for status, _ in answers] == [200, 200], answers
    assert await _recorder_in(gp)
    assert len(client.app[keys.CONSULT_RECORDERS].running) == 1
    assert [a for a, _, _ in await audit_trail(client.app, "consult.recording.start")] in (
        ["gp-a"],
        ["cardio"],
    )
    ended, _ = await act(client, world, consult_id, "end", "gp-a")
    assert ended == 200
    await client.app[keys.CONSULT_RECORDERS].wait(consult_id)
    response = await client.get(
        f"/api/v1/consults/{consult_id}/recording", headers=world.auth("gp-a")
    )
    body = await response.json()
    assert response.status == 409, "nobody answered the recorder: no media, no file"
    assert body["error"]["details"] == {"recorded": False}
    await gp.close()
    await host.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_recorder_runs_in_one_process_and_hears_a_withdrawal_from_another(
    client: Client,
    world: World,
    settings: Settings,
    two_servers: list[ClientSession],  # noqa: F811
) -> None:
    consult_id = await accepted_consult(client, world)
    one, other = two_servers
    host = await Signal.open(other, consult_id, world.auth("cardio"))
    await host.join("host")
    gp = await Signal.open(one, consult_id, world.auth("gp-a"))
    await gp.join("participant")
    await host.next("knock")
    await host.send("admit", peer=gp.peer)
    await gp.peers_become(gp.peer, host.peer)
    for _ in range(600):
        if (await consult(client, world, consult_id))["status"] == "live":
            break
        await asyncio.sleep(0.05)
    path = f"/api/v1/consults/{consult_id}/recording"
    senders = [Sender(30), Sender(220)]
    try:
        given = await one.post(path, json={"consent": True}, headers=world.auth("gp-a"))
        assert given.status == 200, await given.text()
        second = await other.post(path, json={"consent": True}, headers=world.auth("cardio"))
        assert (await second.json())["recording"] is True, "the second process records"
        recorder = await _recorder_in(gp)  # gp-a's process hears of it on the bus
        assert await _recorder_in(host) == recorder
        await senders[0].answer(gp)
        await senders[1].answer(host)
        await asyncio.sleep(2.0)
        withdrawn = await one.post(path, json={"consent": False}, headers=world.auth("gp-a"))
        assert withdrawn.status == 200
        await gp.peers_become(gp.peer, host.peer)
        for _ in range(1200):
            state = await (await one.get(f"{path}/state", headers=world.auth("gp-a"))).json()
            if not state["recording"]:
                break
            await asyncio.sleep(0.05)
        assert state["stop_reason"] == "withdrawn"
    finally:
        for sender in senders:
            await sender.close()
    ended = await one.post(f"/api/v1/consults/{consult_id}/end", headers=world.auth("gp-a"))
    assert ended.status == 200
    for _ in range(1200):
        found = await one.get(path, headers=world.auth("gp-a"))
        if found.status == 200:
            break
        await asyncio.sleep(0.05)
    assert found.status == 200, await found.text()
    data = await found.read()
    assert data[:4] == b"\x1a\x45\xdf\xa3"
    assert _recordings(settings) == [
        settings.data_dir / "recordings" / f"consult-{consult_id}.webm"
    ]
    await gp.close()
    await host.close()
