"""JSON request bodies are RFC 8259 JSON: what Python's json module tolerates beyond it is refused."""

from __future__ import annotations

import httpx
import pytest

from cityhealth.strict_json import is_json

_MALFORMED = [
    b'{"username": NaN, "password": "secret-words"}',
    b'{"username": "a", "password": Infinity}',
    b'{"username": "a", "password": -Infinity}',
    b'{"username": "a", "password": 1e400}',
    b'{"username": "\\ud800", "password": "secret-words"}',
    b'{"username": "a\\udc00b", "password": "secret-words"}',
    b'{"username": "a", "password": "secret-words"',
]


@pytest.mark.parametrize("body", _MALFORMED)
async def test_a_body_outside_rfc_8259_is_refused_with_422_malformed_body(client: httpx.AsyncClient,
                                                                          body: bytes) -> None:
    response = await client.post("/api/auth/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["field"], problem["rule"]) == ("malformed_body", "body", "json.malformed")
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_problem_json_body_is_checked_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", content=b'{"username": NaN}',
                                 headers={"content-type": "application/merge-patch+json; charset=utf-8"})
    assert response.status_code == 422
    assert response.json()["code"] == "malformed_body"


async def test_a_paired_surrogate_escape_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", content=b'{"username": "\\ud83d\\ude00", "password": "pw"}',
                                 headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_a_valid_body_sent_in_chunks_reaches_the_route_whole(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"username": "nobody", '
        yield b'"password": "secret-words"}'

    response = await client.post("/api/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize(("content_type", "expected"), [
    ("application/json", True), ("application/json; charset=utf-8", True), ("application/fhir+json", True),
    ("text/json", False), ("application/x-www-form-urlencoded", False), ("multipart/form-data", False),
])
def test_is_json_matches_what_fastapi_parses_as_json(content_type: str, expected: bool) -> None:
    assert is_json(content_type) is expected
