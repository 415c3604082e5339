"""Request context (id, metrics), error mapping and security headers."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from server import keys
from server.access import access_of
from server.context import is_api
from server.errors import DomainError, NotAuthenticated, ServiceUnavailable, TooManyRequests
from server.templates import render

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}
BUSY_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the database is busy (503)."""
# PostgreSQL: lock_not_available, query_canceled (statement or lock timeout),
# too_many_connections, cannot_connect_now, admin_shutdown.
_BUSY_SQLSTATES = frozenset({"55P03", "57014", "53300", "57P03", "57P01"})
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_CSP_FRAMEABLE = _CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request with an id and record its route, status and latency."""
    request[keys.REQUEST_ID] = secrets.token_hex(8)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics = request.app[keys.METRICS]
        metrics.http_requests.labels(route, request.method, str(status)).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - started)


def error_response(
    request: web.Request, *, status: int, code: str, message: str, details: Any = None
) -> web.Response:
    """The documented error body for API routes, an error page for browser routes."""
    if is_api(request):
        return web.json_response(
            {"error": {"code": code, "message": message, "details": details}}, status=status
        )
    return render(request, "error.html", status=status, message=message)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map domain errors and HTTP errors to responses; never show a stack trace."""
    try:
        return await handler(request)
    except NotAuthenticated as error:
        if request.method == "GET" and access_of(request.match_info.handler).page:
            raise web.HTTPSeeOther(f"/login?next={quote(str(request.rel_url), safe='')}") from None
        return error_response(request, status=401, code=error.code, message=error.message)
    except DomainError as error:
        response = error_response(
            request,
            status=error.status,
            code=error.code,
            message=error.message,
            details=error.details,
        )
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        elif isinstance(error, ServiceUnavailable):
            response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return response
    except (OperationalError, SQLAlchemyTimeoutError, DBAPIError) as error:
        if not _is_busy(error):
            raise
        log.warning(
            "database busy or unreachable: %s",
            type(getattr(error, "orig", error)).__name__,
            extra={"request_id": request.get(keys.REQUEST_ID)},
        )
        response = error_response(
            request,
            status=503,
            code="unavailable",
            message="The database is busy or unreachable; try again in a few seconds.",
            details={"request_id": request.get(keys.REQUEST_ID)},
        )
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return response
    except (web.RequestPayloadError, HttpProcessingError) as error:
        # The body breaks HTTP framing or its Content-Encoding: the client's mistake.
        reason = _payload_reason(error)
        log.info("unreadable request body: %s", reason, extra=_request_id(request))
        request.content.feed_eof()  # nothing more to read: aiohttp would retry and log it
        response = error_response(
            request,
            status=400,
            code="bad_request",
            message=f"The request body cannot be read: {reason}.",
        )
        response.force_close()
        return response
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = (
            error.text
            if error.text and not error.text.startswith(str(error.status))
            else error.reason
        )
        response = error_response(
            request, status=error.status, code=_CODES.get(error.status, "error"), message=message
        )
        if "Allow" in error.headers:  # a 405 names the methods the resource takes
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error", extra={"request_id": request.get(keys.REQUEST_ID)})
        return error_response(
            request,
            status=500,
            code="internal",
            message="Something went wrong on the server; it has been logged.",
            details={"request_id": request.get(keys.REQUEST_ID)},
        )


def _is_busy(error: Exception) -> bool:
    """True for a database that is locked, overloaded or unreachable, not for a bad query."""
    if isinstance(error, OperationalError | SQLAlchemyTimeoutError):
        return True  # SQLite "database is locked", pool exhausted, connection lost
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _BUSY_SQLSTATES


def _payload_reason(error: Exception) -> str:
    cause = error if isinstance(error, HttpProcessingError) else error.__cause__
    message = cause.message if isinstance(cause, HttpProcessingError) else ""
    lines = message.strip().splitlines()
    return lines[0].rstrip(":. ") if lines else "it is not valid HTTP"


def _request_id(request: web.Request) -> dict[str, Any]:
    return {"request_id": request.get(keys.REQUEST_ID)}


def allow_same_origin_framing(response: web.StreamResponse) -> None:
    """Let pages of this origin (only) show `response` in a frame; everything else stays DENY.

    For the pages that another page of ours embeds, such as the study viewer inside a call.
    """
    response.headers["Content-Security-Policy"] = _CSP_FRAMEABLE
    response.headers["X-Frame-Options"] = "SAMEORIGIN"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response carries: CSP, no sniffing, no framing, HSTS under TLS.

    A response that allow_same_origin_framing() marked keeps its same-origin framing.
    """
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    if headers.get("X-Frame-Options") != "SAMEORIGIN":
        headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(self), microphone=(self), display-capture=(self)"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.app[keys.SETTINGS].tls_enabled:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
