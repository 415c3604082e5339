"""The OpenAPI document is valid and describes the declared endpoints and their schemas."""

from __future__ import annotations

from openapi_spec_validator import validate

from server.endpoint import endpoint_of
from tests.support import Client, World


async def test_openapi_document_is_valid_and_complete(client: Client, world: World) -> None:
    assert (await client.get("/api/v1/openapi.json")).status == 401
    response = await client.get("/api/v1/openapi.json", headers=world.auth("gp-a"))
    assert response.status == 200
    document = await response.json()
    validate(document)
    declared = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None and endpoint_of(route.handler) is not None
    }
    published = {(m, p) for p, item in document["paths"].items() for m in item}
    assert declared == published
    create = document["paths"]["/api/v1/patients"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PatientIn"
    }
    schema = document["components"]["schemas"]["PatientIn"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "birth_date", "sex", "identifier"}
    assert "201" in create["responses"]
    assert "422" in create["responses"]
    listing = document["paths"]["/api/v1/patients"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"q", "limit", "offset"}
    one = document["paths"]["/api/v1/patients/{id}"]["get"]
    assert one["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    assert "ErrorResponse" in document["components"]["schemas"]


async def test_openapi_lists_each_endpoint_s_own_errors_and_the_birth_date_rule(
    client: Client, world: World
) -> None:
    response = await client.get("/api/v1/openapi.json", headers=world.auth("gp-a"))
    document = await response.json()
    validate(document)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert login["429"]["content"] == error
    assert "Retry-After" in login["429"]["headers"]
    create = document["paths"]["/api/v1/patients"]["post"]["responses"]
    assert create["409"]["content"] == error
    assert "409" not in document["paths"]["/api/v1/patients"]["get"]["responses"]
    assert "429" not in document["paths"]["/api/v1/me"]["get"]["responses"]
    birth_date = document["components"]["schemas"]["PatientIn"]["properties"]["birth_date"]
    assert birth_date["format"] == "date"
    assert "1880" in birth_date["description"]
    assert "future" in birth_date["description"]
