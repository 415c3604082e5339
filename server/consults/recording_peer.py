"""The call recorder: a server-side aiortc peer in the consult's room that records the call.

The process whose request took the recording on (`recording.consent`) runs it. It joins
the call as an in-process member (`Rooms.attach`) with the role `recorder` and the name
"Recorder", so everybody's `peers` shows it (the "Recording" indicator). It follows the
call's rules like a browser: entering a room where doctors are, it offers to each of them
(receive-only audio and video); a peer that comes later (a reload) offers to it, and it
answers. It sends no media. Every received track is recorded (`recording_media`).

It stops when a doctor withdraws their consent (a `stop` on the bus channel
`recording:{id}`, from whichever process took the request), when the consult ends (the
room closes its members), when nobody else is left in the room (or nobody came within
`consult_recorder_idle_seconds`), and at shutdown. Then the parts are muxed into
`recordings/consult-<id>.webm` and the row is filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from server import keys
from server.consults import recording, recording_media
from server.consults.signaling import RECORDER, Attachment, Member, SignalError
from server.db import transaction
from server.identity import Actor

log = logging.getLogger(__name__)
RECORDER_ACTOR = Actor(user_id=None, username="consult-recorder", org_id=None)
NAME = "Recorder"
DRAIN_SECONDS = 5.0
"""How long the recorder keeps recording frames it received before it was stopped."""


class CallRecorder:
    """One consult's recorder: its room membership, a peer connection per doctor, the parts."""

    def __init__(self, app: web.Application, consult_id: int, org_id: int) -> None:
        settings = app[keys.SETTINGS]
        self.app = app
        self.consult_id = consult_id
        self.org_id = org_id
        self.idle_seconds = settings.consult_recorder_idle_seconds
        self.data_dir = settings.data_dir
        self.audit = app[keys.AUDIT].recorder(RECORDER_ACTOR)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.files = recording_media.TrackFiles(recording.work_folder(self.data_dir, consult_id))
        self.reason = ""
        self.attachment: Attachment | None = None
        self.others_seen = False
        self._adding: set[asyncio.Future[None]] = set()

    def stop(self, reason: str) -> None:
        """Ask the recorder to stop (the first reason given is kept)."""
        self.inbox.put_nowait({"type": "_stop", "reason": reason})

    async def run(self) -> None:
        """Record until told to stop; then finish the file and fill the row."""
        try:
            await self._record()
        except Exception:
            log.exception("recorder: consult %s failed", self.consult_id)
            self.reason = self.reason or "failed"
        finally:
            await self._finish()

    async def _record(self) -> None:
        rooms = self.app[keys.CONSULT_ROOMS]
        bus = self.app[keys.EVENT_BUS]
        async with bus.subscribe(recording.channel(self.consult_id)) as stops:
            listener = asyncio.create_task(self._hear_stops(stops))
            try:
                try:
                    self.attachment = await rooms.attach(
                        member=Member(user_id=None, name=NAME, role=RECORDER),
                        audit=self.audit,
                        consult_id=self.consult_id,
                        org_id=self.org_id,
                        deliver=self.inbox.put_nowait,
                        closed=lambda code: self.stop("ended" if code == 1000 else "shutdown"),
                    )
                except SignalError as refused:
                    log.warning("recorder: consult %s: %s", self.consult_id, refused.message)
                    self.reason = "failed"
                    return
                await self._serve()
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _hear_stops(self, stops: Any) -> None:
        async for delivery in stops:
            if delivery.event.get("type") == "stop":
                self.stop(str(delivery.event.get("reason", "withdrawn"))[:32])

    async def _serve(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(
                    self.inbox.get(), None if self.others_seen else self.idle_seconds
                )
            except TimeoutError:
                self.reason = "empty"
                return
            kind = message.get("type")
            if kind == "_stop":
                self.reason = self.reason or str(message["reason"])
                return
            if kind == "error" and message.get("code") == "ended":
                self.reason = "ended"
                return
            try:
                if kind == "peers" and await self._peers(message["peers"]):
                    self.reason = "empty"
                    return
                if kind == "offer":
                    await self._answer(message["from"], message["sdp"])
                elif kind == "answer":
                    pc = self.pcs.get(message["from"])
                    if pc is not None:
                        await pc.setRemoteDescription(
                            RTCSessionDescription(sdp=message["sdp"], type="answer")
                        )
                elif kind == "candidate":
                    await self._candidate(message["from"], message.get("candidate"))
            except SignalError as refused:
                log.info("recorder: consult %s: %s", self.consult_id, refused.message)
            except Exception:
                log.warning("recorder: consult %s: a bad %s", self.consult_id, kind, exc_info=True)

    async def _peers(self, peers: list[dict[str, Any]]) -> bool:
        """Follow the room: offer to those present when I enter; True when nobody is left."""
        me = self.attachment.peer if self.attachment else ""
        others = {p["peer"] for p in peers if p["peer"] != me and p.get("role") != RECORDER}
        for gone in [p for p in self.pcs if p not in others]:
            await self.pcs.pop(gone).close()
        if not others:
            return self.others_seen
        first = not self.others_seen
        self.others_seen = True
        if first:
            for peer in sorted(others):
                await self._offer(peer)
        return False

    def _pc(self, peer: str) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[peer] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            task = asyncio.ensure_future(self.files.add(track))
            self._adding.add(task)
            task.add_done_callback(self._adding.discard)

        return pc

    async def _offer(self, peer: str) -> None:
        pc = self._pc(peer)
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await self._send({"type": "offer", "to": peer, "sdp": pc.localDescription.sdp})
        await self._send({"type": "candidate", "to": peer, "candidate": None})

    async def _answer(self, peer: str, sdp: str) -> None:
        old = self.pcs.pop(peer, None)
        if old is not None and old.signalingState != "stable":
            await old.close()
            old = None
        pc = old or self._pc(peer)
        self.pcs[peer] = pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._send({"type": "answer", "to": peer, "sdp": pc.localDescription.sdp})
        await self._send({"type": "candidate", "to": peer, "candidate": None})

    async def _candidate(self, peer: str, found: Any) -> None:
        pc = self.pcs.get(peer)
        if pc is None or not isinstance(found, dict) or not found.get("candidate"):
            return
        text = str(found["candidate"])
        candidate = candidate_from_sdp(text.split(":", 1)[1] if ":" in text else text)
        candidate.sdpMid = found.get("sdpMid")
        candidate.sdpMLineIndex = found.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)

    async def _hang_up(self) -> None:
        for pc in list(self.pcs.values()):
            with contextlib.suppress(Exception):
                await pc.close()
        self.pcs.clear()

    async def _send(self, message: dict[str, Any]) -> None:
        if self.attachment is not None:
            await self.attachment.send(message)

    async def _finish(self) -> None:
        out = self.data_dir / recording.media_path(self.consult_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        media = None
        try:
            muxed = await recording_media.finish(
                self.files, out, drain=DRAIN_SECONDS, before_mux=self._hang_up
            )
            if muxed is not None:
                media = {
                    "duration_seconds": muxed.duration_seconds,
                    "tracks": muxed.tracks,
                    "size": muxed.size,
                    "sha256": muxed.sha256,
                }
        except Exception:
            log.exception("recorder: consult %s: the file could not be finished", self.consult_id)
            self.reason = "failed"
        await self._hang_up()
        if self.attachment is not None:
            with contextlib.suppress(Exception):
                await self.attachment.leave()
        try:
            async with transaction(self.app[keys.SESSIONMAKER]) as session:
                await recording.finished(
                    session=session,
                    audit=self.audit,
                    consult_id=self.consult_id,
                    org_id=self.org_id,
                    reason=self.reason or "failed",
                    media=media,
                )
        except Exception:
            log.exception("recorder: consult %s: the recording row was not filled", self.consult_id)


class Recorders:
    """The call recorders this process runs, one per consult."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.running: dict[int, tuple[CallRecorder, asyncio.Task[None]]] = {}

    def start(self, consult_id: int, org_id: int) -> None:
        """Start recording a consult's call in this process (once)."""
        if consult_id in self.running:
            return
        recorder = CallRecorder(self.app, consult_id, org_id)
        task = asyncio.create_task(recorder.run(), name=f"doorstep-recorder-{consult_id}")
        self.running[consult_id] = (recorder, task)
        task.add_done_callback(lambda _: self.running.pop(consult_id, None))

    async def wait(self, consult_id: int) -> None:
        """Wait until a consult's recorder has finished (tests, shutdown)."""
        found = self.running.get(consult_id)
        if found is not None:
            await asyncio.shield(found[1])

    async def close(self) -> None:
        """Shutdown: stop every recorder and let each finish its file."""
        for recorder, _ in list(self.running.values()):
            recorder.stop("shutdown")
        tasks = [task for _, task in self.running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=30)


async def recorders(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: this process's call recorders (keys.CONSULT_RECORDERS)."""
    found = Recorders(app)
    app[keys.CONSULT_RECORDERS] = found
    yield
    await found.close()
