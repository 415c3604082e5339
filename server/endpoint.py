"""JSON API endpoints: declared schemas (for OpenAPI), body parsing and JSON responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.access import allow
from server.errors import InvalidInput, MalformedInput, PayloadTooLarge, UnsupportedMediaType
from server.identity import Role

H = TypeVar("H", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)
_ATTRIBUTE = "__doorstep_endpoint__"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an API handler takes and returns, as published in the OpenAPI document."""

    summary: str
    tag: str
    body: type[BaseModel] | None
    response: Any
    status: int
    query: type[BaseModel] | None
    errors: tuple[int, ...] = ()
    """Error statuses of this endpoint beyond the ones every endpoint may answer."""
    media_type: str = "application/json"
    """The media type of a successful response (an SVG, a PDF... for the few that are not JSON)."""
    raw_body: tuple[str, ...] = ()
    """Media types of a request body that is not JSON (an XML document, say), if any."""


def api(
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    query: type[BaseModel] | None = None,
    errors: Sequence[int] = (),
    roles: Sequence[Role] = (),
    public: bool = False,
    guest: bool = False,
    media_type: str = "application/json",
    raw_body: Sequence[str] = (),
) -> Callable[[H], H]:
    """Declare an API handler's schemas, its own error statuses (409, 429) and who may call it.

    raw_body names the media types of a request body that is not JSON (read by the handler);
    guest lets a consult guest's credential through to the handler, which checks it.
    """

    def mark(handler: H) -> H:
        spec = Endpoint(
            summary,
            tag,
            body,
            response,
            status,
            query,
            tuple(errors),
            media_type,
            tuple(raw_body),
        )
        setattr(handler, _ATTRIBUTE, spec)
        return allow(*roles, public=public, guest=guest)(handler)

    return mark


def endpoint_of(handler: Callable[..., Any]) -> Endpoint | None:
    """The declared endpoint of a handler, if it is an API handler."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Endpoint) else None


def _validation_details(error: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]


def validate(model: type[M], data: Any) -> M:
    """Validate data against a schema, naming each offending field in the error."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        details = _validation_details(error)
        fields = ", ".join(d["field"] for d in details)
        raise InvalidInput(f"Invalid request: {fields}.", details=details) from None


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON request body."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the request body as application/json.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"Request body is larger than the limit of {request.client_max_size} bytes."
        ) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedInput(f"Request body is not valid JSON: {error}.") from None
    return validate(model, data)


def read_query(request: web.Request, model: type[M]) -> M:
    """Validate the query string against a schema."""
    return validate(model, dict(request.query))


def json_response(payload: BaseModel | Sequence[BaseModel], *, status: int = 200) -> web.Response:
    """A JSON response from a schema or a list of them."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json()
    else:
        body = "[" + ",".join(p.model_dump_json() for p in payload) + "]"
    return web.Response(text=body, status=status, content_type="application/json")
