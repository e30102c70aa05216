"""Test data for the security tests: residents in the master index, client key pairs and assertions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import jwt
import pyotp
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cityhealth.registry.identifiers import make_resident_id
from cityhealth.registry.models import Organization, Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE, cipher_for
from cityhealth.security.clients import register_client
from cityhealth.security.principals import Role, Scope
from cityhealth.security.staff import create_staff_user

TOKEN_URL = "https://cityhealth.test/api/auth/token"
STAFF_PASSWORD = "correct horse battery"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class PersonOnIndex:
    id: int
    id_number: str
    name: str
    phone: str


async def add_residents(app: FastAPI, count: int, *, first: int = 1) -> list[PersonOnIndex]:
    """`count` residents inserted straight into the master index (no registry API call, no audit noise)."""
    cipher = cipher_for(app.state.settings)
    now = app.state.clock.now()
    people = []
    async with app.state.database.transaction() as session:
        for n in range(first, first + count):
            born = date(1960, 1, 1) + timedelta(days=37 * n)
            number = make_resident_id("320102", born, (2 * n + 1) % 1000)
            phone = f"139{n:08d}"
            row = Resident(id_number_hash=cipher.lookup_hash(ID_NUMBER, number),
                           id_number_enc=cipher.encrypt(ID_NUMBER, number), name=f"居民{n}", sex=1, birth_date=born,
                           phone_hash=cipher.lookup_hash(PHONE, phone), phone_enc=cipher.encrypt(PHONE, phone),
                           is_active=True, created_at=now, updated_at=now)
            session.add(row)
            await session.flush()
            people.append(PersonOnIndex(row.id, number, row.name, phone))
    return people


async def add_organizations(app: FastAPI, count: int) -> list[int]:
    """`count` hospitals straight into the registry; their ids."""
    now = app.state.clock.now()
    ids = []
    async with app.state.database.transaction() as session:
        for _ in range(count):
            n = uuid.uuid4().hex[:8]
            row = Organization(code=f"ORG-{n}", name=f"测试医院-{n}", kind="hospital",
                               active_from=date(2020, 1, 1), created_at=now, updated_at=now)
            session.add(row)
            await session.flush()
            ids.append(row.id)
    return ids


@dataclass(frozen=True)
class ClientKey:
    """A client's key pair: it signs with `private`, the platform holds `public_jwk`."""

    algorithm: str
    kid: str
    private: Any
    public_jwk: dict[str, Any]

    @classmethod
    def es384(cls, kid: str = "es-1") -> ClientKey:
        private = ec.generate_private_key(ec.SECP384R1())
        return cls("ES384", kid, private, {**json.loads(ECAlgorithm.to_jwk(private.public_key())), "kid": kid})

    @classmethod
    def rs384(cls, kid: str = "rs-1") -> ClientKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls("RS384", kid, private, {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": kid})

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


def assertion(key: ClientKey, app: FastAPI, client_id: str, *, aud: str = TOKEN_URL, exp_in_s: int = 240,
              jti: str | None = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A client assertion as a SMART backend client would sign it, at the app's clock."""
    now = int(app.state.clock.now().timestamp())
    payload = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in_s,
               "jti": jti or uuid.uuid4().hex, **claims}
    return jwt.encode(payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **(headers or {})})


def token_form(signed: str, scope: str | None = None) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed}
    if scope is not None:
        form["scope"] = scope
    return form


async def register(app: FastAPI, client_id: str, key: ClientKey | None = None, *, scopes: tuple[Scope, ...] = (
        Scope.COLLECTION_UPLOAD, Scope.REGISTRY_READ), organization_id: int | None = None,
        jwks_url: str | None = None) -> None:
    async with app.state.database.transaction() as session:
        await register_client(session, app.state.clock, None, client_id=client_id, name=f"系统 {client_id}",
                              scopes=" ".join(scopes), organization_id=organization_id, client_app_id=None,
                              jwks=None if key is None else key.jwks, jwks_url=jwks_url, allow_http_jwks_url=True)


@dataclass(frozen=True)
class StaffAccount:
    id: int
    username: str
    password: str
    totp_secret: str | None


async def add_staff(app: FastAPI, username: str, *roles: Role, password: str = STAFF_PASSWORD,
                    organization_id: int | None = None) -> StaffAccount:
    """A staff user made as `cityhealth users create` makes one; the TOTP secret as the QR code carries it."""
    async with app.state.database.transaction() as session:
        created = await create_staff_user(session, app.state.clock, app.state.settings, username=username,
                                          display_name=username, password=password, roles=frozenset(roles),
                                          organization_id=organization_id)
    secret = None if created.totp_uri is None else pyotp.parse_uri(created.totp_uri).secret
    return StaffAccount(created.user.id, username, password, secret)


def bearer(response_json: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {response_json['access_token']}"}
