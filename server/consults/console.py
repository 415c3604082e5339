"""`doorstep consult join`: one aiortc peer in a consult's call, its progress in plain words."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass

from server.consults.client import ConsultClient, ConsultClientError
from server.consults.media import Source


@dataclass(frozen=True, slots=True)
class Attendance:
    """What `doorstep consult join` was asked to do."""

    server: str
    token: str
    consult_id: int
    source: Source
    duration: float | None
    """Seconds to stay in the call after joining; None until the call ends or Ctrl-C."""
    auto_admit: bool = False
    stun: bool | None = None
    relay_only: bool = False
    chat: str | None = None
    """A chat message to send once in the room."""


def _say(text: str) -> None:
    print(text, flush=True)


async def attend(plan: Attendance) -> int:
    """Join, stay, leave; 0 when done, 2 when the server refused, 1 when the call broke."""
    try:
        peer = ConsultClient(
            plan.server,
            plan.token,
            plan.consult_id,
            source=plan.source,
            auto_admit=plan.auto_admit,
            stun=plan.stun,
            relay_only=plan.relay_only,
            say=_say,
        )
    except (OSError, ValueError) as error:
        print(f"doorstep: cannot open the source {plan.source.path}: {error}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    began = time.monotonic()
    try:
        await peer.join()
        if plan.chat:
            await peer.wait_admitted(within=None if plan.duration is None else plan.duration)
            await peer.send_chat(plan.chat)
        closed = asyncio.ensure_future(peer.wait_for(lambda: False, what="the end", within=1e9))
        stopped = asyncio.ensure_future(stop.wait())
        left = (
            None if plan.duration is None else max(0.0, plan.duration - (time.monotonic() - began))
        )
        await asyncio.wait({closed, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        for task in (closed, stopped):
            task.cancel()
        ended_by_server = closed.done() and not closed.cancelled()
        if ended_by_server:
            closed.exception()  # the socket closed: said below, not raised
    except ConsultClientError as error:
        await peer.leave()
        print(f"doorstep: {error.message}", file=sys.stderr)
        return 2 if error.status is not None else 1
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
    await peer.leave()
    seconds = time.monotonic() - began
    received = ", ".join(
        f"{peer.name_of(p)}: {r.frames} video frames" for p, r in peer.received.items()
    )
    _say(f"Left the call after {seconds:.0f} s ({received or 'no video received'}).")
    if ended_by_server:
        _say(f"The call ended (socket closed, code {peer.close_code}).")
    return 0
