"""A NUL character (U+0000), which no PostgreSQL text column can store, is refused wherever a request carries it:
in a query parameter (the one the contract test found reaching a lookup as a 500), the path, a JSON body."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.nul_text import nul_escaped_in_json
from tests.factories.security import admin_headers


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["field"], problem["rule"]) == ("validation_failed", field, "text.nul")
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_query_parameter_holding_a_nul_is_refused_naming_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await admin_headers(app)
    path = "/api/telemed/pathology/totals"
    _refused(await client.get(f"{path}?city=3201%00&until=2022-06-30T16:00:00Z", headers=headers), "city")
    _refused(await client.get(f"{path}?until=2022-06-30T16:00:00Z&ci%00ty=320100", headers=headers), "city")
    found = await client.get(f"{path}?city=320100&until=2022-06-30T16:00:00Z", headers=headers)
    assert found.status_code == 200, found.text  # on both backends, the same parameter without it is answered


async def test_a_path_holding_a_nul_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    _refused(await client.get("/api/registry/organizations/1%00", headers=await admin_headers(app)), "path")


async def test_a_json_string_holding_a_nul_is_refused_and_an_escaped_backslash_before_u0000_is_not(
    client: httpx.AsyncClient,
) -> None:
    login = "/api/auth/login"
    json_type = {"content-type": "application/json"}
    _refused(await client.post(login, content=b'{"username": "a\\u0000b", "password": "pw"}', headers=json_type),
             "body")
    # The six characters \u0000 after an escaped backslash are text, not a NUL: the route answers.
    response = await client.post(login, content=b'{"username": "a\\\\u0000b", "password": "pw"}', headers=json_type)
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


@pytest.mark.parametrize(("body", "holds"), [
    (b'"\\u0000"', True), (b'"a\\\\\\u0000"', True), (b'"\\\\u0000"', False), (b'"\\\\\\\\u0000"', False),
    (b'"\\u00000"', True), (b'"\\u0001"', False), (b"{}", False),
])
def test_only_an_escape_that_is_one_counts(body: bytes, holds: bool) -> None:
    assert nul_escaped_in_json(body) is holds
