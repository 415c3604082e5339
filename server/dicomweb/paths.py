"""What every DICOMweb view shares: who may call it, its base URL and the UIDs in its path."""

from __future__ import annotations

from aiohttp import web

from dicom_tools.uids import is_valid_uid
from server import keys
from server.errors import MalformedInput
from server.identity import Role

ROLES = (Role.GP, Role.SPECIALIST, Role.ADMIN)
PREFIX = "/dicom-web"


def base_url(request: web.Request) -> str:
    """The absolute URL of the DICOMweb root, for RetrieveURL and BulkDataURI values."""
    public = request.app[keys.SETTINGS].public_url.rstrip("/")
    return (public or str(request.url.origin())) + PREFIX


def path_uid(request: web.Request, name: str) -> str:
    """A UID from the request path, refused unless it is digits and dots."""
    value = request.match_info[name]
    if not is_valid_uid(value):
        raise MalformedInput(
            f"The {name} UID in the path must be digits and dots (at most 64): {value[:70]!r}."
        )
    return value


def optional_uid(request: web.Request, name: str) -> str | None:
    """A UID from the request path when the route has one."""
    return path_uid(request, name) if name in request.match_info else None
