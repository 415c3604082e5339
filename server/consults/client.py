"""A Python peer of a consult's call: signs in with a token, joins through the signaling socket.

`ConsultClient` is an aiortc peer for the tests, the benchmarks and kiosk hardware: it
fetches the call's ICE servers (`GET /api/v1/consults/{id}/ice`), opens the signaling
WebSocket with `Authorization: Bearer <token>`, joins (welcome, lobby, peers), offers to
each peer already in the room when it enters, answers the offers of those who come later,
and streams a source to each of them: a moving test pattern (default), a media file or a
camera (`server.consults.media.Source`). It keeps what it receives: the remote tracks, a
count of decoded video frames and the time of the first one, chat and view messages. A
host may `admit` peers waiting in the lobby, or admit every knock (`auto_admit`).

aiortc limits, designed around here:

- aiortc uses only the first STUN URL and the first TURN URL (udp or tcp) of its
  configuration; `media.rtc_configuration` picks those explicitly. Without any `iceServers`
  aiortc would use Google's public STUN server, so the list is always given, empty if
  need be.
- Candidate gathering waits for every STUN and TURN server: an unreachable one adds about
  5 s to each offer and answer. On loopback (a server on 127.0.0.1, ::1 or localhost)
  STUN is skipped unless asked for (`stun=True`): host candidates are all a loopback call
  needs.
- aiortc does not trickle: its offers and answers carry every candidate, and each is
  followed by `candidate: null`. A browser's trickled candidates are added with
  `addIceCandidate`.
- aiortc has no rollback. Perfect negotiation (the host impolite): the impolite side
  ignores an offer that collides with its own; the polite side answers it on a fresh
  peer connection instead of rolling back. A renegotiation aiortc cannot apply (an ICE
  restart), or one on a connection the other side hung up, is answered the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from server.consults.media import (
    Media,
    Source,
    ice_candidate,
    is_loopback,
    restarts_ice,
    rtc_configuration,
)

log = logging.getLogger(__name__)

HOST = "host"

Say = Callable[[str], None]
"""Where plain-language progress goes (the command line prints it)."""


class ConsultClientError(Exception):
    """The server refused the client (HTTP status, error code and its message), or a timeout."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


# One remote peer --------------------------------------------------------------------------


@dataclass(slots=True)
class Received:
    """What came from one remote peer: its tracks, decoded video frames, the first one's time."""

    tracks: list[MediaStreamTrack] = field(default_factory=list)
    frames: int = 0
    first_frame_at: float | None = None
    """time.monotonic() of the first decoded video frame."""
    size: tuple[int, int] | None = None
    """Width and height of the last video frame."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A chat message of the call (`sender` is a peer id; `name` as `peers` listed it)."""

    sender: str
    name: str
    text: str


class Link:
    """The peer connection to one remote peer, fed its signaling messages in order."""

    def __init__(self, client: ConsultClient, peer: str, *, polite: bool) -> None:
        self.client = client
        self.peer = peer
        self.polite = polite
        self.received = client.received.setdefault(peer, Received())
        self.pc = self._connection()
        self.making_offer = False
        self._pending: list[RTCIceCandidate | None] = []
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name=f"doorstep-consult-link-{peer}")
        self._consumers: set[asyncio.Task[None]] = set()

    def _connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self.client.configuration)
        for track in self.client.media.tracks(shade=len(self.client.links) * 40):
            pc.addTrack(track)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.received.tracks.append(track)
            self.client.on_remote_track(self.peer, track)
            if self.client.consume:
                task = asyncio.create_task(self._consume(track), name="doorstep-consult-media")
                self._consumers.add(task)
                task.add_done_callback(self._consumers.discard)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self.client.connection_changed(self.peer, pc.connectionState)

        return pc

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Read a remote track to its end; count video frames."""
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                if track.kind != "video" or not isinstance(frame, av.VideoFrame):
                    continue
                if self.received.first_frame_at is None:
                    self.received.first_frame_at = time.monotonic()
                    self.client.first_frame(self.peer, frame)
                self.received.frames += 1
                self.received.size = (frame.width, frame.height)
                self.client.notify()

    def put(self, message: dict[str, Any] | None) -> None:
        """Queue a signaling message of this peer (None: start by offering)."""
        self._inbox.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                if message is None:
                    await self._offer()
                elif message["type"] == "offer":
                    await self._on_offer(str(message["sdp"]))
                elif message["type"] == "answer":
                    await self._on_answer(str(message["sdp"]))
                elif message["type"] == "candidate":
                    await self._on_candidate(message.get("candidate"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consult client: negotiation with %s failed", self.peer, exc_info=True)
                self.client.say(f"Could not negotiate with {self.client.name_of(self.peer)}.")

    async def _offer(self) -> None:
        self.making_offer = True
        try:
            await self.pc.setLocalDescription(await self.pc.createOffer())
        finally:
            self.making_offer = False
        await self._send_description()

    async def _on_offer(self, sdp: str) -> None:
        if self.pc.signalingState == "closed" or self.pc.connectionState in ("closed", "failed"):
            await self._renew()  # the remote side hung up that connection and starts again
        collision = self.making_offer or self.pc.signalingState != "stable"
        if collision and not self.polite:
            log.info(
                "consult client: ignoring an offer of %s that collides with ours (%s, %s)",
                self.peer,
                self.pc.signalingState,
                self.making_offer,
            )
            return
        if collision or restarts_ice(self.pc.remoteDescription, sdp):
            await self._renew()
        description = RTCSessionDescription(sdp=sdp, type="offer")
        try:
            await self.pc.setRemoteDescription(description)
        except Exception:
            log.info("consult client: answering %s on a fresh connection", self.peer)
            await self._renew()
            await self.pc.setRemoteDescription(description)
        await self._add_pending()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._send_description()

    async def _on_answer(self, sdp: str) -> None:
        if self.pc.signalingState != "have-local-offer":
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self._add_pending()

    async def _on_candidate(self, data: Any) -> None:
        candidate = ice_candidate(data) if isinstance(data, dict) else None
        if isinstance(data, dict) and candidate is None:
            return
        if self.pc.remoteDescription is None:
            self._pending.append(candidate)
            return
        await self.pc.addIceCandidate(candidate)

    async def _add_pending(self) -> None:
        pending, self._pending = self._pending, []
        for candidate in pending:
            await self.pc.addIceCandidate(candidate)

    async def _send_description(self) -> None:
        description = self.pc.localDescription
        await self.client.send(description.type, to=self.peer, sdp=description.sdp)
        await self.client.send("candidate", to=self.peer, candidate=None)

    async def _renew(self) -> None:
        """Replace the peer connection by a fresh one (aiortc cannot roll back)."""
        log.info("consult client: a fresh peer connection for %s", self.peer)
        old, self.pc = self.pc, self._connection()
        self._pending = []
        await old.close()

    async def close(self) -> None:
        """Hang up on this peer: the worker, the consumers and the peer connection."""
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await self.pc.close()
        for task in list(self._consumers):
            task.cancel()
        if self._consumers:
            await asyncio.wait(list(self._consumers), timeout=5)


# The client ------------------------------------------------------------------------------


class ConsultClient:
    """One peer of a consult's call; `async with` it, or `join()` and `leave()`.

    `server` is the base URL (http[s]://host:port), `token` a bearer token (`doorstep token
    create`). `stun` None skips STUN on a loopback server; `consume` False leaves the
    remote tracks to whoever `on_track` hands them to (e.g. a recorder) instead of counting
    their frames here; `say` receives plain-language progress.
    """

    def __init__(
        self,
        server: str,
        token: str,
        consult_id: int,
        *,
        source: Source | None = None,
        auto_admit: bool = False,
        stun: bool | None = None,
        turn: bool = True,
        relay_only: bool = False,
        consume: bool = True,
        on_track: Callable[[str, MediaStreamTrack], None] | None = None,
        say: Say | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.consult_id = consult_id
        self.source = source or Source()
        self.auto_admit = auto_admit
        self.stun = (not is_loopback(self.server)) if stun is None else stun
        self.turn = turn
        self.relay_only = relay_only
        self.consume = consume
        self.timeout = timeout
        self._token = token
        self._on_track = on_track
        self._say = say
        self.peer: str | None = None
        self.role: str | None = None
        self.in_room = False
        self.in_lobby = False
        self.waited_in_lobby = False
        """True once the server put me in the lobby (a later admission keeps it True)."""
        self.peers: dict[str, dict[str, Any]] = {}
        """Everyone in the room (me included) by peer id, as the last `peers` listed them."""
        self.knocks: dict[str, str] = {}
        """Peers waiting in the lobby (host only): peer id → name."""
        self.chats: list[ChatMessage] = []
        self.views: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.links: dict[str, Link] = {}
        self.received: dict[str, Received] = {}
        """What came from each remote peer (kept after it left, and after leave())."""
        self.configuration = RTCConfiguration(iceServers=[])
        self.media: Media = Media(self.source)
        self.closed = False
        self.close_code: int | None = None
        self.joined_at: float | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._offered = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # Joining

    async def __aenter__(self) -> ConsultClient:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()

    async def join(self) -> str:
        """Fetch the ICE servers, open the socket, join; my role. ConsultClientError if refused."""
        try:
            self._http = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout),
            )
            self.configuration = rtc_configuration(
                await self._ice_servers(),
                stun=self.stun,
                turn=self.turn,
                relay_only=self.relay_only,
            )
            self.say(f"Joining consult {self.consult_id} at {self.server}.")
            self._socket = await self._connect()
            self._reader = asyncio.create_task(self._read(), name="doorstep-consult-reader")
            await self.send("join")
            await self.wait_for(
                lambda: self.role is not None and (self.in_room or self.in_lobby),
                what="the welcome",
            )
        except BaseException:
            await self.leave()
            raise
        self.joined_at = time.monotonic()
        if self.in_room:
            self.say(f"In the call as {self.role}.")
        else:
            self.say("Waiting in the lobby until the host admits you.")
        return str(self.role)

    async def _ice_servers(self) -> list[Mapping[str, Any]]:
        assert self._http is not None
        url = f"{self.server}/api/v1/consults/{self.consult_id}/ice"
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise await self._refusal(response)
                body = await response.json()
        except aiohttp.ClientError as error:
            raise ConsultClientError(f"Cannot reach {self.server}: {error}") from error
        servers = body.get("ice_servers") if isinstance(body, dict) else None
        return [s for s in servers or [] if isinstance(s, dict)]

    async def _refusal(self, response: aiohttp.ClientResponse) -> ConsultClientError:
        code, message = None, response.reason or "refused"
        with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
            body = await response.json()
            found = body.get("error") if isinstance(body, dict) else None
            if isinstance(found, dict):
                code, message = found.get("code"), str(found.get("message", message))
        hint = {
            401: "the token is not valid (create one with `doorstep token create`)",
            403: "your role cannot join calls",
            404: "no such consult, or you are not one of its doctors",
            409: "the consult cannot be called now",
        }.get(response.status)
        text = f"Cannot join consult {self.consult_id}: {message}"
        if hint:
            text += f" ({hint})"
        return ConsultClientError(text, status=response.status, code=code)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self._http is not None
        url = f"{self.server}/api/v1/consults/{self.consult_id}/signal"
        try:
            return await self._http.ws_connect(url, heartbeat=30, max_msg_size=4 * 1024 * 1024)
        except aiohttp.WSServerHandshakeError as error:
            hint = {401: "a valid token", 403: "a GP or specialist", 404: "one of its doctors"}
            needed = hint.get(error.status, "allowed in")
            raise ConsultClientError(
                f"Cannot join consult {self.consult_id}: the server refused the call socket "
                f"(HTTP {error.status}; you must be {needed}).",
                status=error.status,
            ) from error
        except aiohttp.ClientError as error:
            raise ConsultClientError(f"Cannot reach {self.server}: {error}") from error

    # Waiting

    def notify(self) -> None:
        """Wake everyone waiting for a change."""
        self._spawn(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[], bool], *, what: str, within: float | None = None
    ) -> None:
        """Wait until predicate() holds; ConsultClientError on timeout, refusal or close."""

        def settled() -> bool:
            return predicate() or self.closed or (self.role is None and bool(self.errors))

        try:
            async with asyncio.timeout(self.timeout if within is None else within):
                async with self._changed:
                    await self._changed.wait_for(settled)
        except TimeoutError:
            raise ConsultClientError(f"Timed out waiting for {what}.") from None
        if predicate():
            return
        last = self.errors[-1] if self.errors else None
        if last is not None:
            raise ConsultClientError(
                f"Waiting for {what}: {last.get('message')}", code=str(last.get("code"))
            )
        raise ConsultClientError(f"The call socket closed ({self.close_code}) before {what}.")

    async def wait_admitted(self, within: float | None = None) -> None:
        """Wait until I am in the room."""
        await self.wait_for(lambda: self.in_room, what="admission", within=within)

    async def wait_frames(self, count: int = 1, within: float | None = None) -> None:
        """Wait until `count` video frames came from every peer of the room (at least one)."""

        def enough() -> bool:
            others = [p for p in self.peers if p != self.peer]
            return bool(others) and all(
                p in self.received and self.received[p].frames >= count for p in others
            )

        await self.wait_for(enough, what=f"{count} video frames", within=within)

    async def wait_chat(self, count: int = 1, within: float | None = None) -> ChatMessage:
        """Wait until `count` chat messages came; the last one."""
        await self.wait_for(lambda: len(self.chats) >= count, what="a chat message", within=within)
        return self.chats[count - 1]

    # What the client sends

    async def send(self, kind: str, **fields: Any) -> None:
        """Send one signaling message (dropped once the socket is closed)."""
        socket = self._socket
        if socket is None or socket.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(json.dumps({"type": kind, **fields}, separators=(",", ":")))

    async def admit(self, peer: str) -> None:
        """Host: let a peer in from the lobby."""
        await self.send("admit", peer=peer)

    async def send_chat(self, text: str) -> None:
        """A chat message to everyone in the room (kept in the consult record)."""
        await self.send("chat", text=text)

    async def send_view(self, state: Mapping[str, Any]) -> None:
        """A shared-viewing state to everyone in the room."""
        await self.send("view", state=dict(state))

    # What the server sends

    async def _read(self) -> None:
        assert self._socket is not None
        try:
            async for frame in self._socket:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    await self._on_message(message)
                    await self._notify()
        except Exception:
            log.warning("consult client: the call socket failed", exc_info=True)
        finally:
            self.closed = True
            self.close_code = self._socket.close_code
            await self._notify()
            self._spawn(self._hang_up())

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        log.debug("consult client %s: %s", self.peer, str(message)[:120])
        sender = str(message.get("from", ""))
        if kind == "welcome":
            self.peer, self.role = str(message["peer"]), str(message["role"])
            self.in_room = self.role == HOST
        elif kind == "lobby":
            self.in_room, self.in_lobby, self.waited_in_lobby = False, True, True
        elif kind == "knock":
            peer, name = str(message.get("peer")), str(message.get("name", ""))
            if peer not in self.knocks:
                self.knocks[peer] = name
                self.say(f"{name} is waiting in the lobby.")
            if self.auto_admit:
                await self.admit(peer)
        elif kind == "peers":
            await self._on_peers([p for p in message.get("peers", []) if isinstance(p, dict)])
        elif kind in ("offer", "answer", "candidate"):
            if sender and sender != self.peer and sender in self.peers:
                self._link(sender).put(message)
        elif kind == "chat":
            chat = ChatMessage(sender, self.name_of(sender), str(message.get("text", "")))
            self.chats.append(chat)
            self.say(f"{chat.name}: {chat.text}")
        elif kind == "view":
            self.views.append(message)
        elif kind == "error":
            self.errors.append(message)
            self.say(f"The server said: {message.get('message')} ({message.get('code')})")

    async def _on_peers(self, listed: list[dict[str, Any]]) -> None:
        before = set(self.peers)
        names = {p: self.name_of(p) for p in before}
        self.peers = {str(p["peer"]): p for p in listed if "peer" in p}
        if self.peer in self.peers and not self.in_room:
            self.in_room, self.in_lobby = True, False
            self.say("Admitted into the call.")
        for peer in set(self.peers) - before - {self.peer}:
            self.knocks.pop(peer, None)
            self.say(f"{self.name_of(peer)} ({self.peers[peer].get('role')}) is in the call.")
        for peer in before - set(self.peers) - {self.peer}:
            self.say(f"{names.get(peer, peer)} left the call.")
            link = self.links.pop(peer, None)
            if link is not None:
                self._spawn(link.close())
        if self.in_room and not self._offered:
            # I entered a room: I offer to everyone already there; later comers offer to me.
            self._offered = True
            for peer in self.peers:
                if peer != self.peer:
                    self._link(peer).put(None)

    def _link(self, peer: str) -> Link:
        link = self.links.get(peer)
        if link is None:
            link = self.links[peer] = Link(self, peer, polite=self.role != HOST)
        return link

    # Callbacks of the links

    def name_of(self, peer: str) -> str:
        """The name a peer was listed with (or its id)."""
        found = self.peers.get(peer)
        return str(found.get("name") or peer) if found else peer

    def say(self, text: str) -> None:
        """Plain-language progress."""
        log.info("consult client: %s", text)
        if self._say is not None:
            self._say(text)

    def on_remote_track(self, peer: str, track: MediaStreamTrack) -> None:
        """A remote track arrived: hand it on."""
        if self._on_track is not None:
            self._on_track(peer, track)

    def connection_changed(self, peer: str, state: str) -> None:
        """A peer connection's state changed."""
        if state in ("connected", "failed"):
            verb = "Connected to" if state == "connected" else "The connection failed with"
            self.say(f"{verb} {self.name_of(peer)}.")
        self.notify()

    def first_frame(self, peer: str, frame: av.VideoFrame) -> None:
        """The first video frame of a peer was decoded."""
        since = time.monotonic() - (self.joined_at or time.monotonic())
        self.say(
            f"Receiving video from {self.name_of(peer)} ({frame.width}x{frame.height}, "
            f"first frame {math.floor(since * 1000)} ms after joining)."
        )

    # Figures

    @property
    def frames(self) -> int:
        """Video frames decoded from every peer so far."""
        return sum(found.frames for found in self.received.values())

    @property
    def first_frame_at(self) -> float | None:
        """time.monotonic() of the first remote video frame from anyone."""
        found = [r.first_frame_at for r in self.received.values() if r.first_frame_at]
        return min(found) if found else None

    @property
    def remote_tracks(self) -> list[MediaStreamTrack]:
        """Every remote track received so far."""
        return [t for found in self.received.values() for t in found.tracks]

    # Leaving

    async def leave(self) -> None:
        """Leave the call and close everything: the links, the media, the socket, the session."""
        if self._socket is not None and not self._socket.closed:
            await self.send("leave")
            if self._reader is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._reader), 5)
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._hang_up()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.closed = True

    async def _hang_up(self) -> None:
        links, self.links = list(self.links.values()), {}
        for link in links:
            with contextlib.suppress(Exception):
                await link.close()
        self.media.close()

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
