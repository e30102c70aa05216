"""The app factory's conventions: health endpoints, request ids, problem details, security headers."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter

from cityhealth.db.types import INT64_MAX, INT64_MIN
from tests.factories.security import admin_headers


async def test_healthz_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_current_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abcdef123456"})
    assert response.headers["x-request-id"] == "abcdef123456"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["request_id"] == response.headers["x-request-id"]


async def test_security_headers_are_set(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_metrics_are_exposed_for_prometheus(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'cityhealth_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text


async def test_docs_page_is_served_with_local_assets_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "cdn." not in response.text
    assert "/docs-assets/swagger-ui-bundle.js" in response.text
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "cityhealth"


async def test_an_integer_path_parameter_beyond_64_bits_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/quality/units/9223372036854775808")
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("path.organization_id", "less_than_equal")
    assert problem["value"] == "9223372036854775808"


async def test_an_id_beyond_a_postgresql_integer_is_a_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/registry/residents/{2**31}", headers=await admin_headers(app))
    assert response.status_code == 422
    assert response.json()["field"] == "path.resident_id"


async def test_a_negative_id_beyond_a_postgresql_integer_is_a_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/registry/organizations/{-(2**31) - 1}/departments",
                                headers=await admin_headers(app))
    assert response.status_code == 422
    assert response.json()["field"] == "path.organization_id"


async def test_the_largest_id_an_integer_column_holds_is_an_ordinary_unknown_id(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/dashboard/quality/units/{2**31 - 1}")
    assert response.status_code == 404


async def test_an_integer_query_parameter_beyond_its_column_is_a_422_naming_it(app: FastAPI,
                                                                               client: httpx.AsyncClient) -> None:
    response = await client.get("/api/booking/sessions", params={"organization_id": 2**31},
                                headers=await admin_headers(app))
    assert response.status_code == 422
    assert response.json()["field"] == "query.organization_id"


def test_every_integer_path_and_query_parameter_fits_a_64_bit_column(app: FastAPI) -> None:
    unbounded = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        dependant = context.dependant
        for param in [*dependant.path_params, *dependant.query_params]:
            info = param.field_info
            annotation = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            schema = TypeAdapter(annotation).json_schema()
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "integer" and (
                        option.get("maximum", INT64_MAX + 1) > INT64_MAX
                        or option.get("minimum", INT64_MIN - 1) < INT64_MIN):
                    unbounded.append(f"{context.path} {param.name}")
    assert unbounded == []
