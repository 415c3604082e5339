"""The archive reader of a request's caller, for the views and pages that search or retrieve."""

from __future__ import annotations

from aiohttp import web

from server.archive.queries import Reader, principal_reader
from server.context import principal, recorder


def request_reader(request: web.Request) -> Reader:
    """The signed-in caller as a reader: what they may see, audited as them."""
    return principal_reader(principal(request), recorder(request))
