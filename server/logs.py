"""Structured (JSON lines) logging; access log without query strings or credentials."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server import context, keys

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(*, level: str, json_lines: bool) -> None:
    """Send all logs to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aioice tells every candidate pair's state at INFO: noise beside a call's own events.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    # highdicom tells every module it copies into a report's SR or Encapsulated PDF at INFO.
    logging.getLogger("highdicom").setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """Access log lines; the query string may hold patient names, so only the path is logged."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        caller = request.get(keys.PRINCIPAL)
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "request_id": request.get(keys.REQUEST_ID, ""),
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
                "user_id": caller.user_id if caller else None,
                "remote": (
                    context.client_addr(request)
                    # A request that never reached the application (one aiohttp could not
                    # parse) has no app and so no trusted proxies to read.
                    if isinstance(request, web.Request) and keys.REQUEST_ID in request
                    else request.remote
                ),
            },
        )
