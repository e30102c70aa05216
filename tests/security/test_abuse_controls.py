"""Abuse controls: authentication rate limits, request size, CORS closed by default, headers, HTTPS."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from cityhealth.app import create_app
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from cityhealth.security.ratelimit import AuthRateLimiter

LIMIT = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_attempts_per_minute": LIMIT, "max_request_bytes": 2048})


def _client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)),
                             base_url="http://testserver")


async def test_attempts_beyond_the_limit_from_one_address_get_429_with_retry_after(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    for n in range(LIMIT):
        response = await client.post("/api/auth/login", json={"username": f"user{n}", "password": "x"})
        assert response.status_code == 401
    refused = await client.post("/api/auth/login", json={"username": "another", "password": "x"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["rule"] == "auth_attempts_per_address"
    async with app.state.database.sessions() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.detail == "rate_limited"))).all()
    assert len(events) == 1


async def test_attempts_on_one_account_from_many_addresses_are_limited_too(app: FastAPI) -> None:
    statuses = []
    for n in range(LIMIT + 1):
        async with _client_from(app, f"10.0.0.{n + 1}") as client:
            response = await client.post("/api/auth/login", json={"username": "target", "password": f"guess{n}"})
            statuses.append(response.status_code)
    assert statuses == [401] * LIMIT + [429]


async def test_token_requests_count_as_authentication_attempts(app: FastAPI, client: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials"}
    statuses = [(await client.post("/api/auth/token", data=form)).status_code for _ in range(LIMIT + 1)]
    assert statuses == [400] * LIMIT + [429]


async def test_other_addresses_are_not_affected(app: FastAPI, client: httpx.AsyncClient) -> None:
    for n in range(LIMIT + 1):
        await client.post("/api/auth/login", json={"username": f"user{n}", "password": "x"})
    async with _client_from(app, "10.9.9.9") as other:
        assert (await other.post("/api/auth/login", json={"username": "z", "password": "x"})).status_code == 401


async def test_the_window_moves() -> None:
    limiter = AuthRateLimiter(2, window_s=1)
    await limiter.hit(address="10.0.0.1", account=None)
    await limiter.hit(address="10.0.0.1", account=None)
    with pytest.raises(Exception, match="retry after"):
        await limiter.hit(address="10.0.0.1", account=None)
    await asyncio.sleep(1.1)
    await limiter.hit(address="10.0.0.1", account=None)


async def test_the_failure_window_of_an_address_refuses_it_and_ages_out() -> None:
    limiter = AuthRateLimiter(2, window_s=1, failures=2)
    for _ in range(2):
        await limiter.count_failure("10.0.0.1")
    with pytest.raises(Exception, match="failed authentications"):
        await limiter.refuse_failing("10.0.0.1")
    await limiter.refuse_failing("10.0.0.2")
    await asyncio.sleep(1.1)  # the failures left the window
    await limiter.refuse_failing("10.0.0.1")


async def test_asking_about_addresses_that_failed_nothing_stores_nothing() -> None:
    # Every request asks about its address: a flood of addresses must not fill the in-process store.
    limiter = AuthRateLimiter(2, window_s=60, failures=2)
    for n in range(1000):
        await limiter.refuse_failing(f"10.1.{n // 256}.{n % 256}")
    assert limiter._limiter._windows == {}  # type: ignore[attr-defined]  # the in-process store


async def test_a_body_over_the_limit_is_refused_with_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", content=b"{" + b" " * 4096 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["rule"] == "max_request_bytes"


async def test_a_declared_oversized_body_is_refused_with_the_headers_and_request_id(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", content=b"{" + b" " * 4096 + b"}",
                                 headers={"Content-Type": "application/json", "X-Request-ID": "req-too-large-1"})
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "req-too-large-1"
    assert response.json()["request_id"] == "req-too-large-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_a_streamed_oversized_body_is_refused_with_the_headers_and_request_id(
        client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the limit counts as it reads
        yield b"{"
        yield b" " * 4096
        yield b"}"

    response = await client.post("/api/auth/login", content=chunks(),
                                 headers={"Content-Type": "application/json", "X-Request-ID": "req-too-large-2"})
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "req-too-large-2"
    assert response.json()["request_id"] == "req-too-large-2"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/login", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_admits_only_the_configured_origins(settings: Settings, database: Database) -> None:
    configured = settings.model_copy(update={"cors_origins": ["https://app.example"]})
    app = create_app(configured, database=database)
    async with _client_from(app, "127.0.0.1") as client:
        allowed = await client.options("/api/auth/login", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        other = await client.options("/api/auth/login", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


async def test_errors_carry_the_security_headers_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me/sessions")
    assert response.status_code == 401
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def _production(settings: Settings, *, behind_proxy: bool) -> Settings:
    keys = {name: SecretStr(generate_key()) for name in ("field_encryption_key", "lookup_hmac_key",
                                                         "token_signing_key")}
    return Settings(env=Environment.PRODUCTION, database_url=settings.database_url, var_dir=settings.var_dir,
                    behind_proxy=behind_proxy, public_base_url="https://cityhealth.test",
                    **keys)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/api/registry/areas", "/login", "/healthz/x"])
async def test_production_refuses_plain_http(settings: Settings, database: Database, path: str) -> None:
    app = create_app(_production(settings, behind_proxy=False), database=database)
    async with _client_from(app, "127.0.0.1") as client:
        response = await client.get(path)
        spoofed = await client.get(path, headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == spoofed.status_code == 403
    assert response.json()["code"] == "https_required"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("path", "expected"), [("/healthz", "ok"), ("/readyz", "ready")])
async def test_production_answers_the_load_balancers_plain_http_health_checks(
        settings: Settings, database: Database, path: str, expected: str) -> None:
    app = create_app(_production(settings, behind_proxy=False), database=database)
    async with app.router.lifespan_context(app), _client_from(app, "127.0.0.1") as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == expected


async def test_the_content_security_policy_allows_no_inline_script_or_style(client: httpx.AsyncClient) -> None:
    policy = (await client.get("/healthz")).headers["content-security-policy"]
    directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    nonce = directives["script-src"].removeprefix("'self' 'nonce-").removesuffix("'")
    assert directives == {
        "default-src": "'self'", "img-src": "'self' data:", "style-src": f"'self' 'nonce-{nonce}'",
        "script-src": f"'self' 'nonce-{nonce}'", "object-src": "'none'", "base-uri": "'none'",
        "form-action": "'self'", "frame-ancestors": "'none'"}
    assert len(nonce) >= 22


async def test_each_response_gets_its_own_csp_nonce(client: httpx.AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["content-security-policy"]
    second = (await client.get("/healthz")).headers["content-security-policy"]
    assert first != second


async def test_the_docs_pages_inline_script_carries_the_responses_nonce(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    policy = response.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>", response.text)
    inline = [attributes for attributes in scripts if "src=" not in attributes]
    [nonce] = re.findall(r"'nonce-([^']+)'", policy.split("script-src", 1)[1].split(";", 1)[0])
    assert inline == [f' nonce="{nonce}"']
    assert "<style" not in response.text
    assert " style=" not in response.text


async def test_production_behind_a_declared_proxy_accepts_forwarded_https(settings: Settings,
                                                                          database: Database) -> None:
    app = create_app(_production(settings, behind_proxy=True), database=database)
    async with _client_from(app, "127.0.0.1") as client:
        plain = await client.get("/openapi.json")
        forwarded = await client.get("/openapi.json", headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == 403
    assert forwarded.status_code == 200
    assert forwarded.headers["strict-transport-security"].startswith("max-age=")


async def test_the_in_process_windows_are_kept_without_leaving_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # limits' asyncio memory storage expires old entries by handing each key it holds to a thread after every
    # hit: with many addresses in the window, tens of thread round trips per login or token.
    handed: list[object] = []

    async def to_thread(function: object, *args: object) -> None:
        handed.append(function)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    limiter = AuthRateLimiter(3, window_s=1)
    for n in range(200):
        await limiter.hit(address=f"10.0.{n // 100}.{n % 100}", account=f"user{n}")
    await asyncio.sleep(0.05)
    assert handed == []
    await limiter.hit(address="10.0.0.1", account=None)
    await limiter.hit(address="10.0.0.1", account=None)
    with pytest.raises(Exception, match="3 authentication attempts"):  # the window still counts, in process
        await limiter.hit(address="10.0.0.1", account=None)


async def test_addresses_whose_attempts_left_the_window_are_forgotten() -> None:
    limiter = AuthRateLimiter(3, window_s=1)
    for n in range(100):
        await limiter.hit(address=f"10.0.1.{n}", account=None)
    await asyncio.sleep(1.1)
    await limiter.hit(address="10.0.0.1", account=None)
    assert len(limiter._limiter._windows) == 1  # type: ignore[attr-defined]  # the in-process store
