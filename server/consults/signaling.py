"""Signaling of a consult's call: rooms, the lobby, message checks, limits and the bus relay.

Each server process keeps the rooms of its own sockets (`Rooms`, one per application).
A room's processes talk on the event bus channel `consult:{id}`:

- `presence`: a process's local peers of the room (in the lobby or in the room) and the
  users admitted so far; sent on every change and every `presence_seconds`, with
  `ask` when the process has just opened the room (the others answer with theirs).
  A process that is silent for three intervals is taken to be gone, with its peers.
- `admit`: the host admits a peer that another process holds.
- `relay`: a client's offer/answer/candidate for one peer (`to`), or chat/view for all.
- `kick`: a guest link was revoked; every process closes that guest's sockets.

A bus event is at most `bus.MAX_PAYLOAD_BYTES` (NOTIFY's limit); a larger one (an SDP
offer often is) is sent as parts: the message's JSON, base64, cut into pieces, each
`{"n": process, "x": message id, "i": part, "of": parts, "d": piece}`, reassembled by
the receivers and dropped when it is not whole within `chunk_timeout`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import keys
from server.audit.service import Recorder
from server.consults import service
from server.consults.models import ConsultNote, NoteKind
from server.db import WriteGroup, transaction, utcnow
from server.events import channels
from server.events.bus import MAX_PAYLOAD_BYTES, EventBus, Subscription
from server.settings import Settings

log = logging.getLogger(__name__)

PEER_ID_MAX = 64
CHAT_MAX = 4000
MAX_PARTS = 128
MAX_PENDING = 256
OUTBOX_SIZE = 1024
TEXT_MARGIN = 400
"""Room left in a bus event for the envelope around a part (channel, ids, keys)."""
CLOSE_TOO_BIG = WSCloseCode.MESSAGE_TOO_BIG
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION
CLOSE_GOING_AWAY = WSCloseCode.GOING_AWAY
HOST, PARTICIPANT, GUEST = "host", "participant", "guest"
RECORDER = "recorder"
"""The role of the server's call recorder (an in-process member, see `Rooms.attach`)."""
LOBBY, ROOM = "lobby", "room"
RELAYED = frozenset({"offer", "answer", "candidate"})
AUDIT_ATTEMPTS = 5
AUDIT_RETRY_SECONDS = 0.25
"""The first wait before an audit write the database refused is tried again (doubling)."""
BROADCAST = frozenset({"chat", "view"})
CLIENT_TYPES = frozenset({"join", "admit", "leave"}) | RELAYED | BROADCAST


def channel(consult_id: int) -> str:
    """The bus channel of one consult's call."""
    return f"consult:{consult_id}"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one socket may send, how big a room is, and the bus timings."""

    message_bytes: int = 64 * 1024
    rate: float = 50.0
    burst: int = 100
    max_peers: int = 6
    auto_admit: bool = False
    presence_seconds: float = 10.0
    chunk_timeout: float = 10.0

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits configured in settings."""
        return cls(
            message_bytes=settings.consult_signal_message_bytes,
            rate=settings.consult_signal_rate,
            burst=settings.consult_signal_burst,
            max_peers=settings.consult_room_max_peers,
            auto_admit=settings.consult_auto_admit,
            presence_seconds=settings.consult_presence_seconds,
            chunk_timeout=settings.consult_chunk_timeout_seconds,
        )

    @property
    def frame_bytes(self) -> int:
        """The WebSocket frame limit: above it aiohttp closes with 1009 unread."""
        return max(4 * self.message_bytes, 1024 * 1024)


class SignalError(Exception):
    """A message the server refuses: answered with an `error` message, the socket kept."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(code: str, message: str) -> dict[str, Any]:
    """An `error` message."""
    return {"type": "error", "code": code, "message": message}


# Checking client messages ------------------------------------------------------------


def _peer_id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= PEER_ID_MAX:
        raise SignalError("bad_message", f"{key!r} must be a peer id.")
    return value


def _optional(value: Any, kind: type, name: str) -> Any:
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise SignalError("bad_message", f"{name!r} must be a {kind.__name__} or null.")
    return value


def _candidate(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("candidate"), str):
        raise SignalError("bad_message", "'candidate' must be an ICE candidate object or null.")
    found = {
        "candidate": value["candidate"],
        "sdpMid": _optional(value.get("sdpMid"), str, "sdpMid"),
        "sdpMLineIndex": _optional(value.get("sdpMLineIndex"), int, "sdpMLineIndex"),
    }
    if "usernameFragment" in value:
        found["usernameFragment"] = _optional(value["usernameFragment"], str, "usernameFragment")
    return found


def parse(text: str) -> dict[str, Any]:
    """A client message, checked and reduced to its known fields; SignalError if it is bad."""
    try:
        data = json.loads(text)
    except ValueError:
        raise SignalError("bad_message", "Not JSON.") from None
    if not isinstance(data, dict):
        raise SignalError("bad_message", "A message is a JSON object with a 'type'.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        shown = kind[:32] if isinstance(kind, str) else kind
        raise SignalError("bad_message", f"Unknown message type {shown!r}.")
    if kind in ("join", "leave"):
        return {"type": kind}
    if kind == "admit":
        return {"type": kind, "peer": _peer_id(data, "peer")}
    if kind in ("offer", "answer"):
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            raise SignalError("bad_message", "'sdp' must be a session description.")
        return {"type": kind, "to": _peer_id(data, "to"), "sdp": sdp}
    if kind == "candidate":
        if "candidate" not in data:
            raise SignalError("bad_message", "'candidate' is missing (null ends the candidates).")
        return {
            "type": kind,
            "to": _peer_id(data, "to"),
            "candidate": _candidate(data["candidate"]),
        }
    if kind == "chat":
        text_ = data.get("text")
        if not isinstance(text_, str) or not text_.strip():
            raise SignalError("bad_message", "'text' must be some text.")
        if len(text_) > CHAT_MAX:
            raise SignalError("bad_message", f"A chat message is at most {CHAT_MAX} characters.")
        return {"type": kind, "text": text_.strip()}
    state = data.get("state")
    if not isinstance(state, dict):
        raise SignalError("bad_message", "'state' must be an object.")
    return {"type": kind, "state": state}


class TokenBucket:
    """`rate` messages a second on average, `burst` at once; strikes count refused ones."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.strikes = 0.0
        self.refusing = False
        self._at = time.monotonic()

    def take(self) -> bool:
        """True when one more message may pass now."""
        now = time.monotonic()
        elapsed, self._at = now - self._at, now
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.strikes = max(0.0, self.strikes - elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.refusing = False
            return True
        self.strikes += 1.0
        return False

    @property
    def exhausted(self) -> bool:
        """True once the refused messages outrun the rate by a whole burst: close the socket."""
        return self.strikes > self.burst


# Splitting bus events into parts -----------------------------------------------------


def split(
    node: str, message: Mapping[str, Any], *, limit: int = MAX_PAYLOAD_BYTES
) -> list[dict[str, Any]]:
    """The bus events that carry one message: itself when small, else base64 parts."""
    whole = {"n": node, "m": dict(message)}
    encoded = json.dumps(whole, separators=(",", ":"), ensure_ascii=False)
    if len(encoded.encode()) <= limit - TEXT_MARGIN:
        return [whole]
    data = base64.b64encode(
        json.dumps(dict(message), separators=(",", ":"), ensure_ascii=False).encode()
    ).decode()
    size = limit - TEXT_MARGIN
    count = math.ceil(len(data) / size)
    if count > MAX_PARTS:
        raise ValueError(
            f"a signaling message of {len(data)} bytes needs more than {MAX_PARTS} parts"
        )
    ident = secrets.token_hex(8)
    return [
        {"n": node, "x": ident, "i": i, "of": count, "d": data[i * size : (i + 1) * size]}
        for i in range(count)
    ]


@dataclass(slots=True)
class _Pending:
    parts: dict[int, str]
    count: int
    since: float


class Reassembly:
    """Parts of split messages until they are whole; incomplete ones dropped after a timeout."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self.dropped = 0
        self._pending: dict[tuple[str, str], _Pending] = {}

    def add(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The whole message once this part completes it; None before (or if it is bad)."""
        node, ident, index, count, data = (event.get(k) for k in ("n", "x", "i", "of", "d"))
        if not (
            isinstance(node, str)
            and isinstance(ident, str)
            and isinstance(index, int)
            and isinstance(count, int)
            and isinstance(data, str)
            and 0 <= index < count <= MAX_PARTS
        ):
            return None
        self.sweep()
        key = (node, ident)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return None
            pending = self._pending[key] = _Pending({}, count, time.monotonic())
        if pending.count != count:
            return None
        pending.parts[index] = data
        if len(pending.parts) < count:
            return None
        del self._pending[key]
        try:
            whole = json.loads(base64.b64decode("".join(pending.parts[i] for i in range(count))))
        except (ValueError, binascii.Error):
            return None
        return whole if isinstance(whole, dict) else None

    def sweep(self) -> None:
        """Drop messages whose parts have not all come within the timeout."""
        now = time.monotonic()
        for key, pending in list(self._pending.items()):
            if now - pending.since > self.timeout:
                del self._pending[key]
                self.dropped += 1

    @property
    def pending(self) -> int:
        """Messages waiting for parts."""
        return len(self._pending)


# Peers and rooms ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """Who a socket is: a user of the consult, or a guest of one of its guest links."""

    user_id: int | None
    name: str
    role: str
    """host (the accepted specialist), participant (a GP of the clinic), guest, or recorder."""
    guest_id: int | None = None
    """The guest link a guest came in by (what `Rooms.kick` closes)."""
    admitted: bool = False
    """Enters the room without the lobby: a kiosk whose person the specialist accepted."""


@dataclass(slots=True)
class Peer:
    """One peer of a room as every process sees it."""

    peer: str
    name: str
    role: str
    user_id: int | None
    state: str

    def public(self) -> dict[str, Any]:
        """The peer as `peers` lists it."""
        return {"peer": self.peer, "name": self.name, "role": self.role}

    def wire(self) -> dict[str, Any]:
        """The peer as `presence` carries it."""
        return {
            "peer": self.peer,
            "name": self.name,
            "role": self.role,
            "user": self.user_id,
            "state": self.state,
        }

    @classmethod
    def from_wire(cls, data: Any) -> Peer | None:
        """A peer from a `presence` event (None if malformed)."""
        if not isinstance(data, dict):
            return None
        peer, name, role, user, state = (
            data.get(k) for k in ("peer", "name", "role", "user", "state")
        )
        if not (
            isinstance(peer, str)
            and isinstance(name, str)
            and role in (HOST, PARTICIPANT, GUEST, RECORDER)
            and (user is None or isinstance(user, int))
            and state in (LOBBY, ROOM)
        ):
            return None
        return cls(peer, name, str(role), user, str(state))


class Local:
    """A local member of a room as `Rooms` handles it: a socket (`Connection`), or an
    in-process member (`InProcess`, the call recorder). Rooms only queue messages for it
    (`send`), ask it to close (`close`) and wait for it (`finish`)."""

    member: Member
    audit: Recorder
    peer: Peer | None
    sent_peers: list[dict[str, Any]] | None
    closing: bool

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message for this member."""
        raise NotImplementedError

    def close(self, code: int) -> None:
        """Close once the messages queued before are delivered."""
        raise NotImplementedError

    async def finish(self) -> None:
        """Make sure this member is closed."""
        raise NotImplementedError


class InProcess(Local):
    """A member in this process without a socket: messages go to its `deliver` callback,
    and `closed(code)` is called once when the room closes it."""

    def __init__(
        self,
        member: Member,
        audit: Recorder,
        *,
        deliver: Callable[[dict[str, Any]], None],
        closed: Callable[[int], None],
    ) -> None:
        self.member = member
        self.audit = audit
        self.peer = None
        self.sent_peers = None
        self.closing = False
        self._deliver = deliver
        self._closed = closed

    def send(self, message: dict[str, Any]) -> None:
        """Hand a message to the member's callback."""
        if not self.closing:
            self._deliver(message)

    def close(self, code: int) -> None:
        """Tell the member that the room closed it (once)."""
        if not self.closing:
            self.closing = True
            self._closed(code)

    async def finish(self) -> None:
        """Nothing to flush."""
        self.close(CLOSE_GOING_AWAY)


class Attachment:
    """What an in-process member holds: send client messages into its room, leave it."""

    def __init__(self, rooms: Rooms, connection: InProcess, consult_id: int, org_id: int) -> None:
        self.rooms = rooms
        self.connection = connection
        self.consult_id = consult_id
        self.org_id = org_id

    @property
    def peer(self) -> str:
        """My peer id."""
        return self.connection.peer.peer if self.connection.peer is not None else ""

    async def send(self, message: dict[str, Any]) -> None:
        """Send one client message (checked as a socket's are); SignalError if refused."""
        checked = parse(json.dumps(message))
        await self.rooms._handle(self.connection, checked, self.consult_id, self.org_id)

    async def leave(self) -> None:
        """Leave the room (audited as `leave`)."""
        await self.rooms._end(self.connection, self.consult_id, "leave")


class Connection(Local):
    """A local socket: its outbox (written by its own task, so a slow client blocks nobody)."""

    def __init__(self, socket: web.WebSocketResponse, member: Member, audit: Recorder) -> None:
        self.socket = socket
        self.member = member
        self.audit = audit
        self.peer: Peer | None = None
        self.sent_peers: list[dict[str, Any]] | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | int] = asyncio.Queue(OUTBOX_SIZE)
        self._writer = asyncio.create_task(self._write(), name="doorstep-signal-writer")
        self._stopped = asyncio.Event()
        self.close_code: int = CLOSE_GOING_AWAY
        self.closing = False

    async def _write(self) -> None:
        try:
            while True:
                item = await self._outbox.get()
                if isinstance(item, int):
                    self.close_code = item
                    return
                await self.socket.send_str(json.dumps(item, separators=(",", ":")))
        except Exception:  # the socket went away; its reader ends the connection
            return
        finally:
            self._stopped.set()

    async def frames(self) -> AsyncGenerator[WSMessage, None]:
        """The client's frames until it closes, or until this side closes (`close`).

        A pending receive is cancelled rather than closed under (aiohttp's close from
        another task drops the transport before the client answers the close frame).
        """
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            while not self._stopped.is_set():
                receive = asyncio.ensure_future(self.socket.receive())
                await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receive
                    return
                frame = receive.result()
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    return
                if frame.type == WSMsgType.ERROR:
                    return
                yield frame
        finally:
            stop.cancel()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a client too slow to take OUTBOX_SIZE of them is closed."""
        if self.closing:
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("signaling: closing a socket that does not read its messages")
            self.close(CLOSE_POLICY)

    def close(self, code: int) -> None:
        """Close the socket once the messages queued before are sent."""
        if self.closing:
            return
        self.closing = True
        while True:
            try:
                self._outbox.put_nowait(code)
                return
            except asyncio.QueueFull:
                self._outbox.get_nowait()

    async def finish(self) -> None:
        """Wait (a little) for the writer to flush, then make sure the socket is closed."""
        self.close(CLOSE_GOING_AWAY)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), 5)
        except (TimeoutError, asyncio.CancelledError):
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close(code=self.close_code)


@dataclass(slots=True)
class _Remote:
    peers: dict[str, Peer]
    admitted: set[int]
    seen: float


@dataclass(slots=True)
class Room:
    """One consult's call in this process: its local connections and the other processes' peers."""

    consult_id: int
    org_id: int
    local: dict[str, Local] = field(default_factory=dict)
    remote: dict[str, _Remote] = field(default_factory=dict)
    admitted: set[int] = field(default_factory=set)
    """Users admitted into this call so far: back in without a new admission."""
    live: bool = False
    shared_study: str | None = None
    """The study this process's peers last opened together (audited once per change)."""
    listener: asyncio.Task[None] | None = None
    exits: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def peers(self) -> dict[str, Peer]:
        """Every peer of the call, local and remote, in the lobby or in the room."""
        found = {c.peer.peer: c.peer for c in self.local.values() if c.peer is not None}
        for node in self.remote.values():
            found.update(node.peers)
        return found

    def in_room(self) -> list[Peer]:
        """The peers in the room (not the lobby), by peer id."""
        return sorted((p for p in self.peers().values() if p.state == ROOM), key=lambda p: p.peer)

    def lobby(self) -> list[Peer]:
        """The peers waiting in the lobby, by peer id."""
        return sorted((p for p in self.peers().values() if p.state == LOBBY), key=lambda p: p.peer)

    def all_admitted(self) -> set[int]:
        """Users admitted so far, as this process and the others know it."""
        found = set(self.admitted)
        for node in self.remote.values():
            found |= node.admitted
        return found


class Rooms:
    """The calls of one server process, joined to the other processes' through the bus."""

    def __init__(
        self,
        *,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        write_group: WriteGroup | None,
        limits: Limits,
    ) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.write_group = write_group
        self.limits = limits
        self.node = secrets.token_hex(8)
        self.rooms: dict[int, Room] = {}
        self.reassembly = Reassembly(timeout=limits.chunk_timeout)
        self._refresher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._guests: dict[int, set[Connection]] = {}
        """This process's sockets of guests (joined or not yet), by guest link."""

    # Lifetime

    def start(self) -> None:
        """Start the periodic presence refresh."""
        self._refresher = asyncio.create_task(self._refresh(), name="doorstep-signal-presence")

    async def close_sockets(self) -> None:
        """Close every local socket (each leaves its room as it goes)."""
        connections = [c for room in self.rooms.values() for c in room.local.values()]
        for connection in connections:
            connection.close(CLOSE_GOING_AWAY)
        for connection in connections:
            await connection.finish()

    async def close(self) -> None:
        """Shutdown: close every local socket, stop the refresh, leave every room."""
        await self.close_sockets()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for room in list(self.rooms.values()):
            await self._drop_room(room)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _refresh(self) -> None:
        interval = self.limits.presence_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self._refresh_once(interval)
            except Exception:
                log.exception("signaling: the presence refresh failed; again at the next interval")

    async def _refresh_once(self, interval: float) -> None:
        """Forget processes silent for three intervals; announce this one's peers again."""
        self.reassembly.sweep()
        now = time.monotonic()
        for room in list(self.rooms.values()):
            if self.rooms.get(room.consult_id) is not room:
                continue  # it closed while this refresh yielded
            gone = [n for n, r in room.remote.items() if now - r.seen > 3 * interval]
            for node in gone:
                log.info("signaling: process %s went silent; its peers left", node)
                del room.remote[node]
            if gone:
                self._changed(room)
            await self._announce(room)
            # The in-process bus publishes without awaiting anything: yield between rooms,
            # or a process with thousands of calls holds its event loop (and every message
            # it relays) for the whole refresh.
            await asyncio.sleep(0)

    # A socket's life

    async def serve(
        self,
        *,
        socket: web.WebSocketResponse,
        member: Member,
        audit: Recorder,
        consult_id: int,
        org_id: int,
    ) -> None:
        """Read one socket's messages until it leaves, is closed or breaks a limit."""
        connection = Connection(socket, member, audit)
        bucket = TokenBucket(rate=self.limits.rate, burst=self.limits.burst)
        how = "disconnect"
        if member.guest_id is not None:
            self._guests.setdefault(member.guest_id, set()).add(connection)
        try:
            async with contextlib.aclosing(connection.frames()) as frames:
                async for frame in frames:
                    if frame.type != WSMsgType.TEXT:
                        connection.send(error("bad_message", "Messages are JSON text frames."))
                        continue
                    text: str = frame.data
                    if len(text) > self.limits.message_bytes // 4 and (
                        len(text.encode()) > self.limits.message_bytes
                    ):
                        connection.send(
                            error(
                                "message_too_big",
                                f"A message is at most {self.limits.message_bytes} bytes.",
                            )
                        )
                        connection.close(CLOSE_TOO_BIG)
                        how = "message_too_big"
                        break
                    if not bucket.take():
                        if bucket.exhausted:
                            connection.close(CLOSE_POLICY)
                            how = "rate_limited"
                            break
                        if not bucket.refusing:
                            bucket.refusing = True
                            connection.send(error("rate_limited", "Too many messages; slow down."))
                        continue
                    try:
                        message = parse(text)
                        if message["type"] == "leave":
                            connection.close(WSCloseCode.OK)
                            how = "leave"
                            break
                        await self._handle(connection, message, consult_id, org_id)
                    except SignalError as refused:
                        connection.send(error(refused.code, refused.message))
                    if connection.closing:
                        break
        finally:
            if member.guest_id is not None:
                self._forget_guest(member.guest_id, connection)
            # A closed connection may cancel its handler: leave the room all the same.
            ending = asyncio.ensure_future(self._end(connection, consult_id, how))
            self._tasks.add(ending)
            ending.add_done_callback(self._tasks.discard)
            await asyncio.shield(ending)

    def _forget_guest(self, guest_id: int, connection: Connection) -> None:
        found = self._guests.get(guest_id)
        if found is not None:
            found.discard(connection)
            if not found:
                del self._guests[guest_id]

    async def kick(self, consult_id: int, guest_id: int) -> None:
        """Close a guest's sockets of a call at once (its link was revoked), in every process."""
        self._kick_local(guest_id)
        try:
            for event in split(self.node, {"k": "kick", "guest": guest_id}):
                await self.bus.publish(channel(consult_id), event)
        except Exception:
            log.warning(
                "signaling: could not publish a kick on consult %s", consult_id, exc_info=True
            )

    def _kick_local(self, guest_id: int) -> None:
        for connection in list(self._guests.get(guest_id, ())):
            connection.send(error("revoked", "Your guest link was revoked."))
            connection.close(CLOSE_POLICY)

    async def attach(
        self,
        *,
        member: Member,
        audit: Recorder,
        consult_id: int,
        org_id: int,
        deliver: Callable[[dict[str, Any]], None],
        closed: Callable[[int], None],
    ) -> Attachment:
        """Join an in-process member (no socket) to a consult's call, straight into the room.

        Its messages go to `deliver` (as a socket's would be sent), `closed(code)` is called
        when the room closes it (the consult ended, shutdown); it sends client messages with
        `Attachment.send` and leaves with `Attachment.leave`. SignalError (`room_full`) when
        the call is full.
        """
        connection = InProcess(member, audit, deliver=deliver, closed=closed)
        await self._join(connection, consult_id, org_id)
        return Attachment(self, connection, consult_id, org_id)

    async def _end(self, connection: Local, consult_id: int, how: str) -> None:
        try:
            await self._depart(connection, consult_id, how)
        finally:
            await connection.finish()

    async def _handle(
        self, connection: Local, message: dict[str, Any], consult_id: int, org_id: int
    ) -> None:
        kind = message["type"]
        if kind == "join":
            if connection.peer is not None:
                raise SignalError("bad_message", "You have joined already.")
            await self._join(connection, consult_id, org_id)
            return
        peer = connection.peer
        room = self.rooms.get(consult_id)
        if peer is None or room is None:
            raise SignalError("not_joined", 'Send {"type": "join"} first.')
        if peer.state != ROOM:
            raise SignalError("not_admitted", "You are waiting in the lobby.")
        if kind == "admit":
            await self._admit_by(connection, room, message["peer"])
        elif kind in RELAYED:
            target = _in_room(room, message["to"])
            if target is None or target.peer == peer.peer:
                raise SignalError("unknown_peer", "No such peer in the room.")
            relayed = {k: v for k, v in message.items() if k != "to"} | {"from": peer.peer}
            await self._relay(room, relayed, to=target.peer)
        elif kind == "chat":
            try:
                await self._persist_chat(connection, room, message["text"])
            except Exception:
                log.exception("signaling: could not keep a chat message of consult %s", consult_id)
                raise SignalError(
                    "unavailable", "The message could not be kept; send it again."
                ) from None
            await self._relay(
                room, {"type": "chat", "from": peer.peer, "text": message["text"]}, to=None
            )
        else:
            if peer.role == GUEST:
                raise SignalError("not_allowed", "A guest sees the call alone: no shared views.")
            await self._audit_view(connection, room, message["state"])
            await self._relay(
                room, {"type": "view", "from": peer.peer, "state": message["state"]}, to=None
            )

    # Joining and admitting

    async def _join(self, connection: Local, consult_id: int, org_id: int) -> None:
        room = self.rooms.get(consult_id)
        if room is not None and len(room.peers()) >= self.limits.max_peers:
            raise SignalError("room_full", f"The call holds at most {self.limits.max_peers} peers.")
        opened = room is None
        if room is None:
            room = self.rooms[consult_id] = Room(consult_id=consult_id, org_id=org_id)
            await self._open_room(room)
        member = connection.member
        if member.user_id is not None:
            await self._supersede(room, member.user_id)
        enters = (
            member.role in (HOST, RECORDER)
            or member.admitted
            or (member.role == PARTICIPANT and self.limits.auto_admit)
            or (member.user_id is not None and member.user_id in room.all_admitted())
        )
        peer = Peer(
            peer=secrets.token_urlsafe(9),
            name=member.name,
            role=member.role,
            user_id=member.user_id,
            state=ROOM if enters else LOBBY,
        )
        connection.peer = peer
        room.local[peer.peer] = connection
        connection.send({"type": "welcome", "peer": peer.peer, "role": peer.role})
        # Where the peer is, and who waits, are told before anything awaits: the host may
        # admit a waiting peer at once, and a `lobby` sent after its `peers` would be wrong.
        state = peer.state
        if enters:
            if member.user_id is not None:
                room.admitted.add(member.user_id)
        else:
            connection.send({"type": "lobby"})
            self._knock(room, peer)
        if peer.role == HOST:
            for waiting in room.lobby():
                connection.send({"type": "knock", "peer": waiting.peer, "name": waiting.name})
        await self._audit(
            connection,
            room,
            "consult.join",
            {"peer": peer.peer, "role": peer.role, "state": state},
        )
        self._changed(room)
        await self._announce(room, ask=opened)

    async def _supersede(self, room: Room, user_id: int) -> None:
        """A user who joins again (a reload, a changed network, another tab) replaces their
        older socket of this process's room, which may be dead without having said so."""
        for peer_id, old in list(room.local.items()):
            if old.peer is None or old.peer.user_id != user_id:
                continue
            del room.local[peer_id]
            old.send(
                error(
                    "replaced",
                    "You joined this call again from another page or connection; "
                    "this one is closed.",
                )
            )
            old.close(WSCloseCode.OK)
            await self._audit(
                old,
                room,
                "consult.leave",
                {"peer": peer_id, "how": "replaced", "state": old.peer.state},
            )

    async def _admit_by(self, connection: Local, room: Room, target: str) -> None:
        if connection.member.role != HOST:
            raise SignalError("not_host", "Only the host admits peers.")
        found = room.peers().get(target)
        if found is None:
            raise SignalError("unknown_peer", "Nobody with that peer id is waiting.")
        if found.state == ROOM:
            return
        if target in room.local:
            await self._admit(room, room.local[target], by=connection.member.name)
        else:
            await self._publish(room, {"k": "admit", "peer": target, "by": connection.member.name})

    async def _admit(self, room: Room, connection: Local, *, by: str) -> None:
        peer = connection.peer
        if peer is None or peer.state == ROOM:
            return
        peer.state = ROOM
        if peer.user_id is not None:
            room.admitted.add(peer.user_id)
        await self._audit(connection, room, "consult.admit", {"peer": peer.peer, "by": by})
        self._changed(room)
        await self._announce(room)

    def _knock(self, room: Room, waiting: Peer) -> None:
        for connection in room.local.values():
            if (
                connection.peer is not None
                and connection.peer.role == HOST
                and connection.peer.state == ROOM
            ):
                connection.send({"type": "knock", "peer": waiting.peer, "name": waiting.name})

    async def _depart(self, connection: Local, consult_id: int, how: str) -> None:
        peer = connection.peer
        room = self.rooms.get(consult_id)
        if peer is None or room is None or room.local.get(peer.peer) is not connection:
            return
        del room.local[peer.peer]
        await self._audit(
            connection, room, "consult.leave", {"peer": peer.peer, "how": how, "state": peer.state}
        )
        self._changed(room)
        await self._announce(room)
        if not room.local:
            await self._drop_room(room)

    # Presence

    def _changed(self, room: Room) -> None:
        """Tell the local peers in the room who is there, when that changed for them; go live."""
        present = [p.public() for p in room.in_room()]
        for connection in room.local.values():
            if (
                connection.peer is not None
                and connection.peer.state == ROOM
                and connection.sent_peers != present
            ):
                connection.sent_peers = present
                connection.send({"type": "peers", "peers": present})
        roles = {p.role for p in room.in_room()}
        hosts = [
            c
            for c in room.local.values()
            if c.peer is not None and c.peer.role == HOST and c.peer.state == ROOM
        ]
        if not room.live and hosts and {HOST, PARTICIPANT} <= roles:
            room.live = True
            self._spawn(self._mark_live(room, hosts[0].audit))

    async def _announce(self, room: Room, *, ask: bool = False) -> None:
        peers = [c.peer.wire() for c in room.local.values() if c.peer is not None]
        await self._publish(
            room, {"k": "presence", "peers": peers, "admitted": sorted(room.admitted), "ask": ask}
        )

    def _on_presence(self, room: Room, node: str, event: Mapping[str, Any]) -> None:
        raw = event.get("peers")
        admitted = event.get("admitted")
        peers = [
            p for p in (Peer.from_wire(d) for d in (raw if isinstance(raw, list) else [])) if p
        ]
        before = {p.peer: p.state for p in room.peers().values()}
        if peers:
            room.remote[node] = _Remote(
                {p.peer: p for p in peers},
                {u for u in (admitted if isinstance(admitted, list) else []) if isinstance(u, int)},
                time.monotonic(),
            )
        else:
            room.remote.pop(node, None)
        for peer in peers:
            if peer.state == LOBBY and before.get(peer.peer) != LOBBY:
                self._knock(room, peer)
        self._changed(room)
        known = room.all_admitted()
        for connection in list(room.local.values()):
            waiting = connection.peer
            if waiting is not None and waiting.state == LOBBY and waiting.user_id in known:
                self._spawn(self._admit(room, connection, by="rejoin"))
        if event.get("ask") is True:
            self._spawn(self._announce(room))

    # The bus

    async def _open_room(self, room: Room) -> None:
        """Listen to the room's bus channel (attached before anything is published on it)."""
        subscription = await room.exits.enter_async_context(
            self.bus.subscribe(channel(room.consult_id), channels.org(room.org_id))
        )
        room.listener = asyncio.create_task(
            self._listen(room, subscription), name=f"doorstep-signal-{room.consult_id}"
        )

    async def _listen(self, room: Room, subscription: Subscription) -> None:
        async for delivery in subscription:
            try:
                if delivery.channel == channel(room.consult_id):
                    self._on_bus(room, delivery.event)
                else:
                    self._on_clinic_event(room, delivery.event)
            except Exception:
                log.exception("signaling: a bad bus event on consult %s", room.consult_id)

    async def _drop_room(self, room: Room) -> None:
        if self.rooms.get(room.consult_id) is room:
            del self.rooms[room.consult_id]
        await self._publish(
            room, {"k": "presence", "peers": [], "admitted": sorted(room.admitted), "ask": False}
        )
        if room.listener is not None:
            room.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await room.listener
        await room.exits.aclose()

    def _on_bus(self, room: Room, event: Mapping[str, Any]) -> None:
        node = event.get("n")
        if not isinstance(node, str) or node == self.node:
            return
        if "x" in event:
            message = self.reassembly.add(event)
        else:
            inner = event.get("m")
            message = inner if isinstance(inner, dict) else None
        if message is None:
            return
        kind = message.get("k")
        if kind == "presence":
            self._on_presence(room, node, message)
        elif kind == "admit":
            target = room.local.get(str(message.get("peer")))
            if target is not None:
                self._spawn(self._admit(room, target, by=str(message.get("by", ""))[:200]))
        elif kind == "kick" and isinstance(message.get("guest"), int):
            self._kick_local(message["guest"])
        elif kind == "relay" and isinstance(message.get("msg"), dict):
            self._deliver(room, message["msg"], to=message.get("to"))

    def _on_clinic_event(self, room: Room, event: Mapping[str, Any]) -> None:
        """The consult ended (either doctor, any process): every local socket of its call closes."""
        found = event.get("consult")
        if event.get("type") != "consult.ended" or not isinstance(found, dict):
            return
        if found.get("id") != room.consult_id:
            return
        for connection in list(room.local.values()):
            connection.send(error("ended", "The consult has ended."))
            connection.close(WSCloseCode.OK)

    async def _publish(self, room: Room, message: dict[str, Any]) -> None:
        try:
            for event in split(self.node, message):
                await self.bus.publish(channel(room.consult_id), event)
        except Exception:
            log.warning(
                "signaling: could not publish on consult %s", room.consult_id, exc_info=True
            )

    async def _relay(self, room: Room, message: dict[str, Any], *, to: str | None) -> None:
        """Deliver to the local recipients; through the bus to the others' processes."""
        self._deliver(room, message, to=to)
        if to is None or to not in room.local:
            await self._publish(room, {"k": "relay", "to": to, "msg": message})

    def _deliver(self, room: Room, message: dict[str, Any], *, to: Any) -> None:
        """Hand a relayed message to its local recipients in the room (never back to its sender;
        `view` never to guests: shared viewing names the patient's studies, guests see the call
        alone)."""
        private = message.get("type") == "view"
        for connection in room.local.values():
            peer = connection.peer
            if peer is None or peer.state != ROOM or peer.peer == message.get("from"):
                continue
            if private and peer.role in (GUEST, RECORDER):
                continue
            if to is None or peer.peer == to:
                connection.send(message)

    # What the call writes

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _audit(
        self, connection: Local, room: Room, action: str, details: dict[str, Any]
    ) -> None:
        """Record one event of the call. Joins and leaves come in bursts (a clinic's morning,
        a server restart): they share write transactions through the write group, and a
        write the database refused for a moment (SQLite's single writer was busy past its
        timeout) is tried again, so that the record keeps every join and leave."""

        async def write(session: AsyncSession) -> None:
            await connection.audit.record(
                session,
                action=action,
                object_type="consult",
                object_id=room.consult_id,
                org_id=room.org_id,
                details=details,
            )

        failure: Exception | None = None
        for attempt in range(AUDIT_ATTEMPTS):
            try:
                if self.write_group is not None:
                    await self.write_group.run(write)
                else:
                    async with transaction(self.sessionmaker) as session:
                        await write(session)
                return
            except OperationalError as refused:
                failure = refused
                if attempt + 1 < AUDIT_ATTEMPTS:
                    await asyncio.sleep(AUDIT_RETRY_SECONDS * 2**attempt)
            except Exception as broken:
                failure = broken
                break
        log.error(
            "signaling: could not audit %s of consult %s",
            action,
            room.consult_id,
            exc_info=failure,
        )

    async def _audit_view(self, connection: Local, room: Room, state: Any) -> None:
        """Opening a study together is audited (consult.view), once per study opened."""
        if not isinstance(state, dict) or "study" not in state:
            return
        study = state["study"] if isinstance(state["study"], str) else None
        if study == room.shared_study:
            return
        room.shared_study = study
        if study is not None and connection.peer is not None:
            await self._audit(
                connection,
                room,
                "consult.view",
                {"study": study[:64], "peer": connection.peer.peer},
            )

    async def _persist_chat(self, connection: Local, room: Room, text: str) -> None:
        member = connection.member
        if member.user_id is None and member.guest_id is None:
            return  # the server's own recorder says nothing
        async with transaction(self.sessionmaker, self.write_group) as session:
            await record_chat(
                session=session,
                audit=connection.audit,
                consult_id=room.consult_id,
                org_id=room.org_id,
                author_id=member.user_id,
                guest_id=member.guest_id,
                text=text,
            )

    async def _mark_live(self, room: Room, audit: Recorder) -> None:
        try:
            async with transaction(self.sessionmaker, self.write_group) as session:
                await service.mark_live(
                    session=session, audit=audit, bus=self.bus, consult_id=room.consult_id
                )
        except Exception:
            room.live = False
            log.exception("signaling: could not mark consult %s live", room.consult_id)


def _in_room(room: Room, peer_id: str) -> Peer | None:
    found = room.peers().get(peer_id)
    return found if found is not None and found.state == ROOM else None


async def record_chat(
    *,
    session: AsyncSession,
    audit: Recorder,
    consult_id: int,
    org_id: int,
    author_id: int | None,
    guest_id: int | None = None,
    text: str,
) -> ConsultNote:
    """Keep one chat message of the call in the consult record (as a note), audited: a
    doctor's (author_id) or a guest's (guest_id)."""
    note = ConsultNote(
        consult_id=consult_id,
        author_id=author_id,
        guest_id=guest_id,
        kind=NoteKind.CHAT.value,
        text=text,
        created_at=utcnow(),
    )
    session.add(note)
    await session.flush()
    await audit.record(
        session,
        action="consult.chat",
        object_type="consult",
        object_id=consult_id,
        org_id=org_id,
        details={"note": note.id},
    )
    return note


async def rooms(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: this process's calls (keys.CONSULT_ROOMS); sockets closed at shutdown."""
    found = Rooms(
        bus=app[keys.EVENT_BUS],
        sessionmaker=app[keys.SESSIONMAKER],
        write_group=app[keys.WRITE_GROUP],
        limits=Limits.of(app[keys.SETTINGS]),
    )
    found.start()
    app[keys.CONSULT_ROOMS] = found
    yield
    await found.close()


async def close_sockets(app: web.Application) -> None:
    """On shutdown: close the call sockets first, so that the server need not wait for them."""
    found = app.get(keys.CONSULT_ROOMS)
    if found is not None:
        await found.close_sockets()
