"""ICE servers of a call: STUN URLs, and TURN URLs with time-limited TURN REST credentials.

The credentials are those of coturn's `use-auth-secret` (draft-uberti-behave-turn-rest):
the username is `<expiry unix time>:<user id>` and the password is
base64(HMAC-SHA1(shared secret, username)); coturn refuses them once the expiry passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

STUN_SCHEMES = ("stun:", "stuns:")
TURN_SCHEMES = ("turn:", "turns:")


@dataclass(frozen=True, slots=True)
class IceServer:
    """One RTCIceServer: its URLs, and credentials for TURN."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class IceServers:
    """What a browser passes to RTCPeerConnection, and when the credentials stop working."""

    servers: tuple[IceServer, ...]
    expires_at: datetime


def turn_credential(*, secret: str, username: str) -> str:
    """The TURN REST password of a username: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers(
    *, urls: Sequence[str], secret: str, user: str, ttl: timedelta, now: datetime | None = None
) -> IceServers:
    """The ICE servers for one user: STUN as configured, TURN with credentials until now+ttl.

    Without a shared secret TURN cannot be used, so its URLs are left out.
    """
    moment = now or datetime.now(UTC)
    expires = int((moment + ttl).timestamp())
    stun = tuple(u for u in urls if u.lower().startswith(STUN_SCHEMES))
    turn = tuple(u for u in urls if u.lower().startswith(TURN_SCHEMES))
    servers: list[IceServer] = []
    if stun:
        servers.append(IceServer(stun))
    if turn and secret:
        username = f"{expires}:{user}"
        servers.append(IceServer(turn, username, turn_credential(secret=secret, username=username)))
    return IceServers(tuple(servers), datetime.fromtimestamp(expires, UTC))
