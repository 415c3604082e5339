"""Domain errors shared by every feature; one middleware maps them to HTTP responses."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose; carries an HTTP-independent code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    """The request is well-formed but its content is not acceptable."""

    status = 422
    code = "invalid"


class MalformedInput(DomainError):
    """The request body cannot be parsed."""

    status = 400
    code = "malformed"


class NotAuthenticated(DomainError):
    """No valid credentials were presented."""

    status = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """The object does not exist or is not visible to the caller."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    """The request body exceeds the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """The request body has a content type this endpoint does not take."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(DomainError):
    """The caller is throttled."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A dependency (database, storage) is not reachable."""

    status = 503
    code = "unavailable"
