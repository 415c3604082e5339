"""Base classes of API request and response schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A request body: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    """A response body, built from ORM objects or dicts."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(Out):
    """The `error` member of every error response."""

    code: str
    message: str
    details: Any = None


class ErrorResponse(Out):
    """Every error response: {"error": {"code", "message", "details"}}."""

    error: ErrorBody
