"""The platform's own access tokens: short-lived JWTs (HS256 under the token signing key)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from cityhealth.errors import Unauthenticated
from cityhealth.security.principals import Principal, PrincipalKind, Role, Scope

ISSUER = "cityhealth"
AUDIENCE = "cityhealth-api"
ALGORITHM = "HS256"


def issue_access_token(principal: Principal, *, key: bytes, now: datetime, ttl_s: int) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal.subject,
        "kind": principal.kind.value,
        "scope": " ".join(sorted(principal.scopes)),
        "roles": sorted(principal.roles),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    for name, value in (("org", principal.organization_id), ("rid", principal.resident_id),
                        ("app", principal.client_app_id), ("sid", principal.session_id),
                        ("obo", principal.on_behalf_of)):
        if value is not None:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_access_token(token: str, *, key: bytes, now: datetime, allow_expired_s: int = 0) -> Principal:
    """Verify signature, issuer, audience and expiry against the injected clock; build the Principal.

    `allow_expired_s` accepts a token that expired at most that long ago: only the refresh endpoint
    passes it, and only for a token whose session is still live.
    """
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid access token: {exc}", code="invalid_token") from exc
    if int(claims["exp"]) + allow_expired_s <= int(now.timestamp()):
        raise Unauthenticated("access token expired", code="token_expired")
    try:
        return Principal(
            kind=PrincipalKind(claims["kind"]),
            subject=str(claims["sub"]),
            scopes=frozenset(Scope(s) for s in str(claims.get("scope", "")).split() if s),
            roles=frozenset(Role(r) for r in claims.get("roles", [])),
            organization_id=claims.get("org"),
            resident_id=claims.get("rid"),
            client_app_id=claims.get("app"),
            session_id=claims.get("sid"),
            on_behalf_of=claims.get("obo"),
        )
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("access token carries unknown claims", code="invalid_token") from exc
