"""The OpenAPI 3 document, generated from the declared endpoints and their pydantic schemas."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from server.access import allow
from server.endpoint import Endpoint, endpoint_of
from server.schemas import ErrorResponse

_REF = "#/components/schemas/{model}"
_ERROR_STATUSES = {
    "400": "Malformed request",
    "401": "Not signed in",
    "403": "Not allowed",
    "404": "Not found",
    "413": "Body too large",
    "415": "Unsupported media type",
    "422": "Invalid request",
}
_OWN_ERRORS: dict[int, dict[str, Any]] = {
    409: {"description": "Conflicts with what is stored"},
    429: {
        "description": "Too many attempts",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    },
}


def _schema(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    if "title" in schema and "properties" in schema:
        name = schema["title"]
        components[name] = schema
        return {"$ref": _REF.format(model=name)}
    return schema


def _operation(spec: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": spec.summary, "tags": [spec.tag]}
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(spec.body, components)}},
        }
    elif spec.raw_body:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in spec.raw_body},
        }
    if spec.query is not None:
        properties = spec.query.model_json_schema()["properties"]
        operation["parameters"] = [
            {"name": name, "in": "query", "required": False, "schema": prop}
            for name, prop in properties.items()
        ]
    success: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        success["content"] = {spec.media_type: {"schema": _schema(spec.response, components)}}
    error = {
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}
    }
    operation["responses"] = (
        {str(spec.status): success}
        | {code: {"description": text} | error for code, text in _ERROR_STATUSES.items()}
        | {str(code): _OWN_ERRORS[code] | error for code in spec.errors}
    )
    return operation


def document(app: web.Application) -> dict[str, Any]:
    """OpenAPI 3.1 document of every declared API route of the application."""
    _, defs = models_json_schema([(ErrorResponse, "serialization")], ref_template=_REF)
    components: dict[str, Any] = dict(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        spec = endpoint_of(route.handler)
        if spec is None or route.resource is None:
            continue
        path = route.resource.canonical
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_names(path)
        ]
        operation = _operation(spec, components)
        if parameters:
            operation["parameters"] = parameters + operation.get("parameters", [])
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Doorstep API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "doorstep_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _path_names(path: str) -> list[str]:
    """The names of a path's variables, also where a segment has more (``{uid}.svg``)."""
    return re.findall(r"\{([^}:]+)", path)


@allow()
async def openapi_json(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/openapi.json."""
    return web.json_response(document(request.app))
