"""Running the application on a socket: like web.run_app, with protocol errors in the error body.

aiohttp answers a request it cannot parse (bad request line or header, a header
too long, broken chunked encoding) itself, before any middleware, in text/plain,
and logs the parser's exception with a traceback. Here the low-level request
handler answers those with the documented JSON error body and one info line:
they are the client's mistake, not the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler


class CannotListen(Exception):
    """A listener (HTTP or DICOM) could not bind its address."""

    def __init__(self, what: str, host: str, port: int, error: OSError) -> None:
        super().__init__(f"{what} listener on {host}:{port}: {error}")
        self.what = what
        self.host = host
        self.port = port
        self.error = error


def error_body(status: int, code: str, message: str) -> web.Response:
    """The documented error body, on a connection that is closed after it."""
    response = web.json_response(
        {"error": {"code": code, "message": message, "details": None}}, status=status
    )
    response.force_close()
    return response


def _reason(exc: BaseException | None, message: str | None) -> str:
    """The first line of the parser's message ("Invalid header token"), without the bytes."""
    text = message or getattr(exc, "message", "") or str(exc or "")
    first = str(text).strip().splitlines()[0] if str(text).strip() else "malformed request"
    return first.rstrip(":. ")


class _JsonErrors(RequestHandler):
    """A connection's protocol handler whose own error answers are the JSON error body."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response is out already; the base class closes the connection.
            return super().handle_error(request, status, exc, message)
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            return error_body(
                status, "internal", "Something went wrong on the server; it has been logged."
            )
        reason = _reason(exc, message)
        self.logger.info("bad HTTP request from %s: %s", request.remote, reason)
        return error_body(status, "bad_request", f"The request is not valid HTTP: {reason}.")


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors with the JSON error body."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young collections (CPython's default is 700)."""


def settle_memory() -> None:
    """Once started: what start-up allocated (modules, templates, the app) is moved out of the
    collector's sight (gc.freeze), and young collections run less often. A server holding
    thousands of sockets otherwise pauses for whole collections of a large, long-lived heap
    (hundreds of ms to seconds, measured by benchmarks/consults.py), which every call feels."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def _serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    started: Callable[[], None] | None,
    **runner_args: Any,
) -> None:
    runner = Runner(app, handle_signals=True, **runner_args)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as error:
            raise CannotListen("HTTP", host, port, error) from error
        settle_memory()
        if started is not None:
            started()
        await asyncio.Event().wait()  # until SIGINT or SIGTERM raise GracefulExit
    finally:
        await runner.cleanup()


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    access_log_class: type[AbstractAccessLogger],
    shutdown_timeout: float = 10,
    started: Callable[[], None] | None = None,
) -> None:
    """Serve the application until SIGINT or SIGTERM; `started` runs once it listens.

    Raises CannotListen when the HTTP port (or, from the DIMSE lifetime, the DICOM
    port) cannot be bound.
    """
    # On a signal, GracefulExit ends the loop; cancelling the main task cleans the runner up.
    with contextlib.suppress(web.GracefulExit):
        asyncio.run(
            _serve(
                app,
                host=host,
                port=port,
                ssl_context=ssl_context,
                started=started,
                access_log_class=access_log_class,
                shutdown_timeout=shutdown_timeout,
            )
        )
