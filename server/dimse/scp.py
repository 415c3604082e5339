"""What the DIMSE handlers need, passed to them explicitly, and the bridge to the event loop.

pynetdicom calls handlers in its own threads; they hand coroutines to the
application's event loop and wait for the result.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.archive.archive import Archive
from server.audit.service import AuditLog, Recorder
from server.identity import Actor
from server.settings import Settings

T = TypeVar("T")

HANDLER_TIMEOUT = 600.0
"""Seconds a handler waits for the event loop (one large instance on a slow disk fits)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """The calling application entity of an association and the organisation it maps to."""

    ae_title: str
    address: str
    org_id: int | None

    @property
    def actor(self) -> Actor:
        """Who the audit events of this association are attributed to."""
        return Actor(
            user_id=None,
            username=f"dicom:{self.ae_title}",
            org_id=self.org_id,
            client_addr=self.address,
        )


@dataclass(slots=True)
class Scp:
    """Dependencies of the handlers: the app's loop, archive, audit log, settings, peers."""

    loop: asyncio.AbstractEventLoop
    archive: Archive
    audit_log: AuditLog
    settings: Settings
    _peers: weakref.WeakKeyDictionary[Any, Peer] = field(default_factory=weakref.WeakKeyDictionary)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def session_maker(self) -> async_sessionmaker[AsyncSession]:
        """The application's database sessions."""
        return self.archive.session_maker

    def audit(self, peer: Peer) -> Recorder:
        """The audit recorder of a peer's association."""
        return self.audit_log.recorder(peer.actor)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the application's loop from a pynetdicom thread and wait for it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=HANDLER_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise

    def admit(self, assoc: Any, peer: Peer) -> None:
        """Remember the peer of an accepted association."""
        with self._lock:
            self._peers[assoc] = peer

    def peer(self, assoc: Any) -> Peer | None:
        """The peer of an association, None if it was never admitted."""
        with self._lock:
            return self._peers.get(assoc)
