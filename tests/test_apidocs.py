"""The OpenAPI document's error contract: each status a route can answer, each as a problem document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.apidocs import PROBLEM_MEDIA_TYPE, problem_statuses
from cityhealth.db.types import MAX_OFFSET

_PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


def test_every_error_response_of_every_operation_is_a_problem_document(document: dict[str, Any]) -> None:
    missing = [f"{method.upper()} {path} {status}"
               for path, item in document["paths"].items() for method, operation in item.items()
               for status, response in operation["responses"].items()
               if int(status) >= 400 and response.get("content", {}).get(PROBLEM_MEDIA_TYPE) != _PROBLEM]
    assert missing == []


def test_every_operation_documents_the_unexpected_error(document: dict[str, Any]) -> None:
    assert all("500" in operation["responses"]
               for item in document["paths"].values() for operation in item.values())


def test_an_authenticated_route_documents_401_403_and_429(document: dict[str, Any]) -> None:
    assert set(_responses(document, "get", "/api/me/sessions")) == {"200", "401", "403", "422", "429", "500"}


def test_a_route_with_a_path_parameter_and_a_body_documents_their_refusals(document: dict[str, Any]) -> None:
    assert set(_responses(document, "put", "/api/booking/policies/{organization_id}")) == {
        "200", "400", "401", "403", "404", "409", "413", "422", "429", "500"}


def test_a_login_route_documents_401_and_429(document: dict[str, Any]) -> None:
    assert set(_responses(document, "post", "/api/auth/login")) == {
        "200", "400", "401", "409", "413", "422", "429", "500"}


def test_the_token_route_keeps_its_oauth_errors_beside_problem_documents(document: dict[str, Any]) -> None:
    invalid_client = _responses(document, "post", "/api/auth/token")["401"]["content"]
    assert invalid_client["application/json"] == {"schema": {"$ref": "#/components/schemas/OAuthErrorResponse"}}
    assert invalid_client[PROBLEM_MEDIA_TYPE] == _PROBLEM


def test_fastapis_own_validation_error_shape_is_not_documented(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "code", "detail"]


async def test_the_problem_schema_describes_what_the_platform_sends(client: httpx.AsyncClient,
                                                                    document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Problem"]
    sent = (await client.get("/api/registry/areas/none/at/all")).json()
    assert set(schema["required"]) <= set(sent) <= set(schema["properties"])


def test_statuses_are_read_from_the_operations_shape() -> None:
    assert problem_statuses("get", {"responses": {}}) == {429, 500}  # an address refused for its failures, on any route
    assert problem_statuses("delete", {"parameters": [{"in": "path"}], "security": [{"b": []}]}) == {
        401, 403, 404, 409, 422, 429, 500}


def test_the_document_is_generated_once(app: FastAPI) -> None:
    assert app.openapi() is app.openapi()


def test_every_list_pages_no_deeper_than_the_one_offset_limit(document: dict[str, Any]) -> None:
    offsets = {f"{method.upper()} {path}": (parameter["schema"].get("minimum"), parameter["schema"].get("maximum"))
               for path, item in document["paths"].items() for method, operation in item.items()
               for parameter in operation.get("parameters", []) if parameter["name"] == "offset"}
    assert len(offsets) >= 5  # the registry's lists, the knowledge base's, the map's
    assert set(offsets.values()) == {(0, MAX_OFFSET)}, offsets
