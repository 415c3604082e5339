"""The kiosk's path parameters: a visit's id and a person's id."""

from __future__ import annotations

from aiohttp import web

VISIT = "{visit_id:[0-9]{1,19}}"
PERSON = "{person_id:[0-9]{1,19}}"


def visit_id(request: web.Request) -> int:
    """The visit id of the path (its pattern admits digits only)."""
    return int(request.match_info["visit_id"])


def person_id(request: web.Request) -> int:
    """The person id of the path."""
    return int(request.match_info["person_id"])
