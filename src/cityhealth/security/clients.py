"""Machine clients: registration, revocation, and the OAuth2 client-credentials grant with a signed JWT
client assertion, as in SMART Backend Services (RFC 7523 assertions, RS384 or ES384).

A hospital system proves who it is by signing a short-lived assertion with its private key; the platform
checks it against the public key (or JWKS URL) registered for that client and answers with an access
token of at most 300 s carrying the client's scopes and organization.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, DomainError, NotFound, ValidationFailed
from cityhealth.security import repository
from cityhealth.security.audit import Action, record
from cityhealth.security.models import MachineClient
from cityhealth.security.principals import Principal, PrincipalKind, Scope

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services: RS384 and ES384. `none` and the HMAC algorithms (a shared secret) never pass.
KEY_TYPES = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
MAX_ASSERTION_LIFETIME_S = 300
JWKS_CACHE_S = 300
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
_MAX_JWKS_BYTES = 64 * 1024


class OAuthError(DomainError):
    """An OAuth 2.0 error (RFC 6749 §5.2): `error` is the standard code, rendered as the RFC says."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description, code=error)
        self.status = status
        self.error = error

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message}


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


def _parse_scopes(text: str, field_name: str) -> frozenset[Scope]:
    values = text.split()
    unknown = [value for value in values if value not in Scope.__members__.values()]
    if unknown:
        raise ValidationFailed(f"{field_name}: unknown scope {unknown[0]!r}", field=field_name, value=unknown[0],
                               rule="scope.known")
    return frozenset(Scope(value) for value in values)


def _validate_jwks(jwks: dict[str, Any]) -> str:
    """The JWK Set as stored: public RS384/ES384-capable keys only, each with a `kid`."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValidationFailed("jwks: a JWK Set with at least one key is required", field="jwks", rule="jwks.keys")
    for index, key in enumerate(keys):
        where = f"jwks.keys[{index}]"
        if not isinstance(key, dict):
            raise ValidationFailed(f"{where}: not a JWK object", field=where, rule="jwks.key")
        if "d" in key or "k" in key:
            raise ValidationFailed(f"{where}: this is a private or symmetric key; register the public key only",
                                   field=where, rule="jwks.public_only")
        if not any(key.get("kty") == kty and (crv is None or key.get("crv") == crv)
                   for kty, crv in KEY_TYPES.values()):
            raise ValidationFailed(f"{where}: only RSA keys (RS384) and EC P-384 keys (ES384) are accepted",
                                   field=where, value=key.get("kty"), rule="jwks.key_type")
        if not key.get("kid"):
            raise ValidationFailed(f"{where}: every key needs a kid", field=where, rule="jwks.kid")
        try:
            jwt.PyJWK(key, algorithm="RS384" if key.get("kty") == "RSA" else "ES384")
        except jwt.PyJWTError as exc:
            raise ValidationFailed(f"{where}: not a usable key ({exc})", field=where, rule="jwks.key") from exc
    return json.dumps({"keys": keys}, sort_keys=True)


async def register_client(session: AsyncSession, clock: Clock, principal: Principal | None, *, client_id: str,
                          name: str, scopes: str, organization_id: int | None, client_app_id: int | None,
                          jwks: dict[str, Any] | None, jwks_url: str | None,
                          allow_http_jwks_url: bool = False) -> MachineClient:
    """Register a machine client with its public key(s) and the scopes it may ask for."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise ValidationFailed("client_id: 3-64 letters, digits, '.', '_' or '-'", field="client_id",
                               value=client_id, rule="client_id.format")
    granted = _parse_scopes(scopes, "scopes")
    if (jwks is None) == (jwks_url is None):
        raise ValidationFailed("give exactly one of jwks (the public keys) or jwks_url", field="jwks",
                               rule="jwks.one_source")
    if jwks_url is not None and not (jwks_url.startswith("https://") or
                                     (allow_http_jwks_url and jwks_url.startswith("http://"))):
        raise ValidationFailed("jwks_url: must be an https:// URL", field="jwks_url", value=jwks_url,
                               rule="jwks_url.https")
    stored_jwks = None if jwks is None else _validate_jwks(jwks)
    if organization_id is not None and not await repository.organization_exists(session, organization_id):
        raise ValidationFailed(f"organization_id: no organization {organization_id}", field="organization_id",
                               value=organization_id, rule="organization.exists")
    if client_app_id is not None and not await repository.client_app_exists(session, client_app_id):
        raise ValidationFailed(f"client_app_id: no client app {client_app_id}", field="client_app_id",
                               value=client_app_id, rule="client_app.exists")
    if await repository.machine_client(session, client_id) is not None:
        raise Conflict(f"client_id {client_id!r} is taken", code="client_id_taken", field="client_id",
                       value=client_id)
    now = clock.now()
    client = MachineClient(client_id=client_id, name=name, organization_id=organization_id,
                           client_app_id=client_app_id, scopes=" ".join(sorted(granted)), jwks=stored_jwks,
                           jwks_url=jwks_url, created_at=now, updated_at=now)
    session.add(client)
    await session.flush()
    record(session, clock, principal, Action.CREATE, "machine_client", resource_id=client_id,
           actor=None if principal else "cli", actor_kind=None if principal else "operator")
    return client


async def registered_clients(session: AsyncSession) -> Sequence[MachineClient]:
    return await repository.machine_clients(session)


async def revoke_client(session: AsyncSession, clock: Clock, principal: Principal | None, client_id: str
                        ) -> MachineClient:
    """Revoke a client: no new tokens at once; tokens already issued stop within CLIENT_STATE_CACHE_S."""
    client = await repository.machine_client(session, client_id, for_update=True)
    if client is None:
        raise NotFound(f"no client {client_id!r}", field="client_id", value=client_id)
    if client.revoked_at is None:
        client.revoked_at = client.updated_at = clock.now()
    record(session, clock, principal, Action.DEACTIVATE, "machine_client", resource_id=client_id,
           actor=None if principal else "cli", actor_kind=None if principal else "operator")
    return client


@dataclass
class JwksFetcher:
    """JWK Sets fetched from clients' `jwks_url`, cached JWKS_CACHE_S (re-fetched once on an unknown kid)."""

    cache: dict[str, tuple[list[dict[str, Any]], datetime]] = field(default_factory=dict)

    async def keys(self, url: str, now: datetime, *, refresh: bool = False) -> list[dict[str, Any]]:
        cached = self.cache.get(url)
        if cached and not refresh and timedelta(0) <= now - cached[1] < timedelta(seconds=JWKS_CACHE_S):
            return cached[0]
        try:
            keys = await asyncio.to_thread(_fetch_jwks, url)
        except (OSError, ValueError) as exc:
            raise _invalid_client(f"the client's JWKS URL could not be read: {type(exc).__name__}") from exc
        self.cache[url] = (keys, now)
        return keys


def _fetch_jwks(url: str) -> list[dict[str, Any]]:
    if not url.startswith(("https://", "http://")):
        raise ValueError("not an http(s) URL")
    # The scheme is checked above; the URL was registered by a platform administrator.
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        body = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    document = json.loads(body)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("no keys in the JWKS document")
    return [key for key in keys if isinstance(key, dict)]


@dataclass(frozen=True)
class Grant:
    principal: Principal
    client: MachineClient


def unverified_issuer(assertion: str) -> str | None:
    """The `iss` an assertion claims, before any check: only to key the rate limit and the audit."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer[:64] if isinstance(issuer, str) else None


async def exchange_assertion(session: AsyncSession, clock: Clock, fetcher: JwksFetcher, *, token_url: str,
                             grant_type: str | None, assertion_type: str | None, assertion: str | None,
                             scope: str | None) -> Grant:
    """Check a client assertion every way SMART requires; return the client's principal for the token."""
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}, with a "
                                            "client_assertion")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid_client("client_assertion is not a JWT") from exc
    algorithm = header.get("alg")
    if algorithm not in KEY_TYPES:
        raise _invalid_client(f"alg {algorithm!r} is not accepted; sign with RS384 or ES384")
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or client_id != unverified.get("sub"):
        raise _invalid_client("iss and sub must both be the client_id")
    client = await repository.machine_client(session, client_id)
    if client is None or client.revoked_at is not None:
        raise _invalid_client("unknown or revoked client")
    claims = await _verified_claims(client, fetcher, clock.now(), assertion, algorithm, header.get("kid"),
                                    token_url)
    now = clock.now()
    expires = _numeric_date(claims, "exp")
    if expires <= int(now.timestamp()):
        raise _invalid_client("the client assertion has expired")
    if expires > int(now.timestamp()) + MAX_ASSERTION_LIFETIME_S:
        raise _invalid_client(f"exp is more than {MAX_ASSERTION_LIFETIME_S} s ahead")
    if "nbf" in claims and _numeric_date(claims, "nbf") > int(now.timestamp()):
        raise _invalid_client("the client assertion is not valid yet (nbf)")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 255:
        raise _invalid_client("jti must be a string of 1-255 characters")
    await repository.purge_used_jtis(session, now)
    if not await repository.remember_jti(session, client_id, jti, datetime.fromtimestamp(expires, UTC)):
        raise _invalid_client("this client assertion (jti) has already been used")
    registered = frozenset(Scope(value) for value in client.scopes.split())
    requested = scope.split() if scope else sorted(registered)
    refused = [value for value in requested if value not in registered]
    if refused:
        raise OAuthError("invalid_scope", f"scope {refused[0]!r} is not granted to this client")
    principal = Principal(kind=PrincipalKind.CLIENT, subject=f"client:{client_id}",
                          scopes=frozenset(Scope(value) for value in requested),
                          organization_id=client.organization_id, client_app_id=client.client_app_id)
    record(session, clock, principal, Action.TOKEN, "access_token", resource_id=client_id)
    return Grant(principal, client)


def _numeric_date(claims: dict[str, Any], name: str) -> int:
    """An RFC 7519 NumericDate claim: a finite JSON number of seconds (a string, a boolean or an object is
    a malformed assertion, refused like any other)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid_client(f"{name} must be a NumericDate (seconds since the epoch, a JSON number)")
    return int(value)


async def _verified_claims(client: MachineClient, fetcher: JwksFetcher, now: datetime, assertion: str,
                           algorithm: str, kid: object, token_url: str) -> dict[str, Any]:
    keys = await _candidate_keys(client, fetcher, now, algorithm, kid, refresh=False)
    if not keys and client.jwks_url and kid is not None:  # the client may have rotated its keys since
        keys = await _candidate_keys(client, fetcher, now, algorithm, kid, refresh=True)
    if not keys:
        raise _invalid_client("no registered key of this client matches the assertion's kid and alg")
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion, jwt.PyJWK(key, algorithm=algorithm), algorithms=[algorithm], audience=token_url,
                # exp is checked against the injected clock by the caller, not against time.time().
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["iss", "sub", "aud", "exp", "jti"]},
            )
            return claims
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAudienceError as exc:
            raise _invalid_client(f"aud must be the token URL {token_url}") from exc
        except jwt.PyJWTError as exc:
            raise _invalid_client(f"client assertion rejected: {exc}") from exc
    raise _invalid_client("the client assertion's signature does not verify")


async def _candidate_keys(client: MachineClient, fetcher: JwksFetcher, now: datetime, algorithm: str,
                          kid: object, *, refresh: bool) -> list[dict[str, Any]]:
    if client.jwks is not None:
        keys: list[dict[str, Any]] = json.loads(client.jwks)["keys"]
    else:
        assert client.jwks_url is not None  # noqa: S101 - the has_keys constraint guarantees one source
        keys = await fetcher.keys(client.jwks_url, now, refresh=refresh)
    kty, crv = KEY_TYPES[algorithm]
    return [key for key in keys
            if key.get("kty") == kty and (crv is None or key.get("crv") == crv)
            and (kid is None or key.get("kid") == kid) and "d" not in key]
