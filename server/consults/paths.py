"""The consults' paths: the `{id}` route pattern, a consult id from a request, the call page."""

from __future__ import annotations

from aiohttp import web

ID = r"{id:[0-9]{1,12}}"
"""The `{id}` of every consult route: 1 to 12 digits (longer never matches: 404)."""


def consult_id(request: web.Request) -> int:
    """The consult id of a request to a route with ID in its path."""
    return int(request.match_info["id"])


def call_page(consult: int) -> str:
    """The call page of a consult (the contract's `/consults/{id}`)."""
    return f"/consults/{consult}"
