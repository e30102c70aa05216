"""Problem documents and the unexpected-error path: every answer, even a failure, is a problem document
with the security headers and the request id, and nothing a caller sent can make rendering it fail."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.registry.identifiers import mask_phone, mask_resident_id, resident_id_check_char


def _numeric_id_number() -> str:
    """A valid 18-digit ID number whose check character is a digit, so it can be sent as a JSON integer."""
    for sequence in range(100, 200):
        first17 = f"32010219900307{sequence}"
        check = resident_id_check_char(first17)
        if check.isdigit():
            return first17 + check
    raise AssertionError("no numeric check character in range")


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    async def fail() -> None:
        raise RuntimeError("the database went away")

    app.add_api_route("/api/test-failure", fail, methods=["GET"])
    return app


async def test_an_unexpected_error_is_a_problem_document_with_the_request_id(
        failing_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/test-failure", headers={"X-Request-ID": "req-failure-0001"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-failure-0001"
    assert response.json() == {
        "type": "https://cityhealth.dev/problems/internal_error", "title": "Internal server error",
        "status": 500, "code": "internal_error",
        "detail": "internal error; quote the request id to the operator", "request_id": "req-failure-0001",
    }


async def test_an_unexpected_error_carries_the_security_headers(failing_app: FastAPI,
                                                                 client: httpx.AsyncClient) -> None:
    response = await client.get("/api/test-failure")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_an_unexpected_error_is_logged_with_the_request_id(
        failing_app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="cityhealth"):
        await client.get("/api/test-failure", headers={"X-Request-ID": "req-failure-0002"})
    [logged] = [record for record in caplog.records if record.getMessage() == "unhandled error"]
    assert logged.request_id == "req-failure-0002"  # type: ignore[attr-defined]
    assert logged.error_type == "RuntimeError"  # type: ignore[attr-defined]
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], RuntimeError)


async def test_an_id_number_sent_as_a_number_is_refused_with_422_and_masked(client: httpx.AsyncClient) -> None:
    number = _numeric_id_number()
    response = await client.post("/api/auth/residents/register", json={
        "id_number": int(number), "name": "居民", "phone": "13800138000", "password": "long enough"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "id_number"
    assert body["rule"] == "string_type"
    assert body["value"] == mask_resident_id(number)
    assert body["errors"][0]["value"] == mask_resident_id(number)
    assert number not in response.text


async def test_a_phone_sent_as_a_number_is_refused_with_422_and_masked(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/residents/register", json={
        "id_number": "x", "name": "居民", "phone": 13800138000, "password": "long enough"})
    assert response.status_code == 422
    [error] = [item for item in response.json()["errors"] if item["field"] == "phone"]
    assert error["value"] == mask_phone("13800138000")


@pytest.mark.parametrize("value", [5, 1.5, [1, 2], {"nested": "13800138000"}, True])
async def test_a_login_with_a_value_of_the_wrong_type_is_refused_with_422(
        client: httpx.AsyncClient, value: object) -> None:
    response = await client.post("/api/auth/login", json={"username": value, "password": "secret-words"})
    assert response.status_code == 422
    assert response.json()["field"] == "username"
    assert response.json()["code"] == "validation_failed"


async def test_a_login_with_a_phone_number_as_username_is_refused_with_422_and_masked(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"username": 13800138000, "password": "secret-words"})
    assert response.status_code == 422
    assert response.json()["value"] == mask_phone("13800138000")
    assert "13800138000" not in response.text
