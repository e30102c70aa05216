"""Problem documents and the unexpected-error path: every answer, even a failure, is a problem document
with the security headers and the request id, and nothing a caller sent can make rendering it fail."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from cityhealth.errors import Conflict
from cityhealth.observability import JsonFormatter, access_log, problem_body, problem_response
from cityhealth.registry.identifiers import mask_phone, mask_resident_id, resident_id_check_char
from cityhealth.request_vars import request_id_var


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


def test_the_access_line_written_to_the_stream_is_the_line_the_logging_module_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    token = request_id_var.set("req-access-0001")
    try:
        access_log("POST", "/api/booking/bookings", 409, 1.25)
        logging.getLogger("cityhealth").info("request", extra={
            "method": "POST", "route": "/api/booking/bookings", "status": 409, "duration_ms": 1.25})
    finally:
        request_id_var.reset(token)
    direct, through_logging = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("time")[:10] == through_logging.pop("time")[:10]
    assert list(direct.items()) == list(through_logging.items()) == [
        ("level", "INFO"), ("logger", "cityhealth"), ("message", "request"), ("request_id", "req-access-0001"),
        ("method", "POST"), ("route", "/api/booking/bookings"), ("status", 409), ("duration_ms", 1.25)]


def test_the_access_line_reaches_a_capturing_handler_as_a_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cityhealth"):
        access_log("GET", "/healthz", 200, 0.5)
    [logged] = [record for record in caplog.records if record.getMessage() == "request"]
    assert (logged.method, logged.route, logged.status, logged.duration_ms) == ("GET", "/healthz", 200, 0.5)


@pytest.mark.parametrize("request_id", ["req-first-0001", "req-second-0002", None])
def test_a_repeated_refusal_is_sent_as_the_bytes_jsonresponse_renders(request_id: str | None) -> None:
    for value in (7, True, "7"):
        error = Conflict("session 7 has no slot left", code="sold_out", field="session_id", value=value,
                         rule="booking.sold_out")
        expected = JSONResponse(problem_body(error, request_id), status_code=409,
                                media_type="application/problem+json")
        sent = problem_response(error, request_id)
        assert (sent.body, sent.headers.items()) == (expected.body, expected.headers.items())
