"""Machine clients: SMART Backend Services client assertions, and every way a forged one must fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from sqlalchemy import event, func, select, update

from cityhealth.clock import SimulatedClock
from cityhealth.security.models import AuditEvent, MachineClient, UsedJti
from cityhealth.security.principals import Role
from tests.factories.security import admin_headers, headers_for, staff
from tests.security.support import TOKEN_URL, ClientKey, add_organizations, assertion, register, token_form

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture(scope="module")
def es_key() -> ClientKey:
    return ClientKey.es384()


@pytest.fixture(scope="module")
def rs_key() -> ClientKey:
    return ClientKey.rs384()


async def _token(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await client.post("/api/auth/token", data=form)


async def test_es384_assertion_gets_a_short_lived_token_with_the_clients_scopes(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await _token(client, token_form(assertion(es_key, app, "his-a")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] <= 300
    assert body["scope"] == "collection.upload registry.read"
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "client:his-a"
    assert claims["exp"] - claims["iat"] <= 300


async def test_rs384_assertion_gets_a_token(app: FastAPI, client: httpx.AsyncClient, rs_key: ClientKey) -> None:
    await register(app, "district-a", rs_key)
    response = await _token(client, token_form(assertion(rs_key, app, "district-a")))
    assert response.status_code == 200, response.text


async def test_token_carries_the_clients_organization(app: FastAPI, client: httpx.AsyncClient,
                                                      es_key: ClientKey) -> None:
    [organization_id] = await add_organizations(app, 1)
    await register(app, "his-gulou", es_key, organization_id=organization_id)
    response = await _token(client, token_form(assertion(es_key, app, "his-gulou")))
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["org"] == organization_id


async def test_a_narrower_scope_can_be_requested(app: FastAPI, client: httpx.AsyncClient,
                                                 es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await _token(client, token_form(assertion(es_key, app, "his-a"), scope="registry.read"))
    assert response.json()["scope"] == "registry.read"


async def test_a_scope_not_granted_is_invalid_scope(app: FastAPI, client: httpx.AsyncClient,
                                                    es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await _token(client, token_form(assertion(es_key, app, "his-a"), scope="security.admin"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_the_token_opens_protected_routes(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    token = (await _token(client, token_form(assertion(es_key, app, "his-a")))).json()["access_token"]
    response = await client.get("/api/me/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == []


# --- Attacks: each must be refused with 400 or 401 ------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _refused(client: httpx.AsyncClient, signed: str) -> httpx.Response:
    response = await _token(client, token_form(signed))
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    assert "access_token" not in response.json()
    return response


async def test_alg_none_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    now = int(app.state.clock.now().timestamp())
    claims = {"iss": "his-a", "sub": "his-a", "aud": TOKEN_URL, "exp": now + 60, "jti": "x1"}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': es_key.kid})}.{_b64(claims)}."
    response = await _refused(client, unsigned)
    assert "alg" in response.json()["error_description"]


async def test_hmac_signed_with_the_public_key_is_rejected(app: FastAPI, client: httpx.AsyncClient,
                                                           rs_key: ClientKey) -> None:
    # The classic key-confusion attack: HS384 keyed with the (public) RSA key's PEM.
    await register(app, "his-a", rs_key)
    now = int(app.state.clock.now().timestamp())
    pem = rs_key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (f"{_b64({'alg': 'HS384', 'typ': 'JWT', 'kid': rs_key.kid})}."
                     f"{_b64({'iss': 'his-a', 'sub': 'his-a', 'aud': TOKEN_URL, 'exp': now + 60, 'jti': 'x2'})}")
    signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha384).digest())
    await _refused(client, f"{signing_input}.{signature.decode().rstrip('=')}")


async def test_wrong_audience_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await _refused(client, assertion(es_key, app, "his-a", aud="https://elsewhere.example/token"))
    assert response.status_code == 401
    assert "aud" in response.json()["error_description"]


async def test_expiry_more_than_five_minutes_ahead_is_rejected(app: FastAPI, client: httpx.AsyncClient,
                                                               es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    await _refused(client, assertion(es_key, app, "his-a", exp_in_s=301))
    accepted = await _token(client, token_form(assertion(es_key, app, "his-a", exp_in_s=300)))
    assert accepted.status_code == 200


async def test_expired_assertion_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey,
                                             clock: SimulatedClock) -> None:
    await register(app, "his-a", es_key)
    signed = assertion(es_key, app, "his-a", exp_in_s=60)
    clock.advance(timedelta(seconds=61))
    await _refused(client, signed)


@pytest.mark.parametrize("claim", ["exp", "nbf"])
@pytest.mark.parametrize("value", ["soon", "1700000000", [1], {"at": 1}, True])
async def test_a_time_claim_of_the_wrong_type_is_refused_as_invalid_client_and_audited(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey, claim: str, value: object) -> None:
    await register(app, "his-a", es_key)
    response = await _refused(client, assertion(es_key, app, "his-a", **{claim: value}))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert f"{claim} must be a NumericDate" in response.json()["error_description"]
    async with app.state.database.sessions() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "token"))).scalars().all()
    assert [(e.actor, e.outcome) for e in events] == [("client:his-a", "denied")]


async def test_replayed_jti_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    signed = assertion(es_key, app, "his-a")
    assert (await _token(client, token_form(signed))).status_code == 200
    response = await _refused(client, signed)
    assert "already been used" in response.json()["error_description"]
    # A new assertion that reuses the jti is a replay too.
    await _refused(client, assertion(es_key, app, "his-a", jti=jwt.decode(
        signed, options={"verify_signature": False})["jti"]))


async def test_unknown_key_id_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    other = ClientKey.es384(kid="not-registered")
    response = await _refused(client, assertion(other, app, "his-a"))
    assert response.status_code == 401


async def test_unknown_client_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    response = await _refused(client, assertion(es_key, app, "nobody"))
    assert response.status_code == 401


async def test_bad_signature_is_rejected(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    impostor = ClientKey.es384(kid=es_key.kid)  # same kid, different private key
    response = await _refused(client, assertion(impostor, app, "his-a"))
    assert response.status_code == 401
    assert "signature" in response.json()["error_description"]


async def test_tampered_claims_break_the_signature(app: FastAPI, client: httpx.AsyncClient,
                                                   es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    await register(app, "his-b", ClientKey.es384())
    header, _, signature = assertion(es_key, app, "his-a").split(".")
    now = int(app.state.clock.now().timestamp())
    claims = {"iss": "his-a", "sub": "his-a", "aud": TOKEN_URL, "exp": now + 60,
              "jti": "swapped"}
    await _refused(client, f"{header}.{_b64(claims)}.{signature}")


async def test_issuer_and_subject_must_both_be_the_client(app: FastAPI, client: httpx.AsyncClient,
                                                          es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    await _refused(client, assertion(es_key, app, "his-a", sub="his-b"))


async def test_wrong_grant_type_is_unsupported(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    form = token_form(assertion(es_key, app, "his-a")) | {"grant_type": "password"}
    response = await _token(client, form)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_refused_assertions_are_audited(app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    await _refused(client, assertion(es_key, app, "his-a", aud="https://elsewhere.example/token"))
    async with app.state.database.sessions() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "token"))).scalars().all()
    assert [(e.actor, e.outcome) for e in events] == [("client:his-a", "denied")]
    assert "aud" in (events[0].detail or "")


async def test_an_assertion_for_another_server_is_refused_whatever_the_host_header_says(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    signed = assertion(es_key, app, "his-a", aud="http://evil.example/api/auth/token")
    response = await client.post("/api/auth/token", data=token_form(signed),
                                 headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"] == f"aud must be the token URL {TOKEN_URL}"
    async with app.state.database.sessions() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "token"))).scalars().all()
    assert [(e.actor, e.outcome) for e in events] == [("client:his-a", "denied")]


async def test_an_assertion_for_the_configured_token_url_works_whatever_the_host_header_says(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await client.post("/api/auth/token", data=token_form(assertion(es_key, app, "his-a")),
                                 headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert response.status_code == 200, response.text


# --- Revocation ----------------------------------------------------------------------------------------


async def test_a_revoked_client_gets_no_new_token(app: FastAPI, client: httpx.AsyncClient,
                                                  es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    response = await client.post("/api/security/clients/his-a/revoke", headers=await admin_headers(app))
    assert response.status_code == 200
    await _refused(client, assertion(es_key, app, "his-a"))


async def test_a_revoked_clients_token_stops_working_within_60_s(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey, clock: SimulatedClock) -> None:
    await register(app, "his-a", es_key)
    token = (await _token(client, token_form(assertion(es_key, app, "his-a")))).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/me/sessions", headers=headers)).status_code == 200
    # Revoked by another worker (straight in the database): this worker learns of it within 60 s.
    async with app.state.database.transaction() as session:
        await session.execute(update(MachineClient).where(MachineClient.client_id == "his-a")
                              .values(revoked_at=clock.now()))
    clock.advance(timedelta(seconds=60))
    response = await client.get("/api/me/sessions", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "client_revoked"


async def test_a_new_tokens_first_request_does_not_read_the_client_again(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    token = (await _token(client, token_form(assertion(es_key, app, "his-a")))).json()["access_token"]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        response = await client.get("/api/me/sessions", headers={"Authorization": f"Bearer {token}"})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert response.status_code == 200
    assert not [statement for statement in statements if "machine_clients" in statement]  # the exchange read it


async def test_revoking_through_the_api_stops_the_token_at_once(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey) -> None:
    await register(app, "his-a", es_key)
    token = (await _token(client, token_form(assertion(es_key, app, "his-a")))).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/me/sessions", headers=headers)).status_code == 200
    await client.post("/api/security/clients/his-a/revoke", headers=await admin_headers(app))
    assert (await client.get("/api/me/sessions", headers=headers)).status_code == 401


# --- Keys published at a JWKS URL ----------------------------------------------------------------------


@pytest.fixture
def jwks_server(es_key: ClientKey) -> Iterator[dict[str, Any]]:
    published: dict[str, Any] = {"jwks": es_key.jwks, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            published["hits"] += 1
            body = json.dumps(published["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    published["url"] = f"http://127.0.0.1:{server.server_port}/jwks.json"
    yield published
    server.shutdown()


async def test_keys_are_fetched_from_the_jwks_url_and_cached(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey, jwks_server: dict[str, Any]) -> None:
    await register(app, "platform-x", jwks_url=jwks_server["url"])
    for _ in range(2):
        response = await _token(client, token_form(assertion(es_key, app, "platform-x")))
        assert response.status_code == 200, response.text
    assert jwks_server["hits"] == 1


async def test_a_rotated_key_at_the_jwks_url_is_picked_up(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey, jwks_server: dict[str, Any]) -> None:
    await register(app, "platform-x", jwks_url=jwks_server["url"])
    assert (await _token(client, token_form(assertion(es_key, app, "platform-x")))).status_code == 200
    rotated = ClientKey.es384(kid="es-2")
    jwks_server["jwks"] = rotated.jwks
    assert (await _token(client, token_form(assertion(rotated, app, "platform-x")))).status_code == 200


# --- Registration --------------------------------------------------------------------------------------


async def test_registering_a_private_key_is_refused(app: FastAPI, client: httpx.AsyncClient,
                                                    es_key: ClientKey) -> None:
    private_jwk = json.loads(ECAlgorithm.to_jwk(es_key.private))
    response = await client.post("/api/security/clients", headers=await admin_headers(app), json={
        "client_id": "his-a", "name": "x", "scopes": ["registry.read"], "jwks": {"keys": [private_jwk]}})
    assert response.status_code == 422
    assert response.json()["rule"] == "jwks.public_only"
    assert private_jwk["d"] not in response.text


async def test_a_client_registered_through_the_api_can_get_tokens(app: FastAPI, client: httpx.AsyncClient,
                                                                  rs_key: ClientKey) -> None:
    response = await client.post("/api/security/clients", headers=await admin_headers(app), json={
        "client_id": "gateway-12345", "name": "12345 政务热线网关", "scopes": ["registry.read"],
        "jwks": rs_key.jwks})
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["registry.read"]
    assert (await _token(client, token_form(assertion(rs_key, app, "gateway-12345")))).status_code == 200


async def test_client_administration_needs_security_admin(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR))
    assert (await client.get("/api/security/clients", headers=headers)).status_code == 403


async def test_used_jtis_are_forgotten_after_their_assertion_expired(
        app: FastAPI, client: httpx.AsyncClient, es_key: ClientKey, clock: SimulatedClock) -> None:
    await register(app, "his-a", es_key)
    await _token(client, token_form(assertion(es_key, app, "his-a", exp_in_s=60)))
    clock.advance(timedelta(seconds=120))
    await _token(client, token_form(assertion(es_key, app, "his-a", exp_in_s=60)))
    async with app.state.database.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(UsedJti))).scalar_one() == 1

