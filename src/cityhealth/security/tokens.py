"""The platform's own access tokens: short-lived JWTs (HS256 under the token signing key)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
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
    return _verify(token, key=key, now=now, allow_expired_s=allow_expired_s)[0]


def _verify(token: str, *, key: bytes, now: datetime, allow_expired_s: int) -> tuple[Principal, int]:
    """The Principal and the token's expiry (epoch seconds)."""
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
        principal = Principal(
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
    return principal, int(claims["exp"])


class VerifiedTokens:
    """Tokens whose signature and claims were verified, so a busy caller's next request skips the HMAC.

    Keyed by the whole token string under the key it was verified with (a token differing in one byte, or
    signed under another key, is a miss and is verified in full). Expiry is checked on every hit against
    the injected clock, exactly as `decode_access_token` does. Bounded: least recently used go first.
    One per app (each worker process has its own); it holds nothing a token's bearer does not hold.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[bytes, str], tuple[Principal, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def decode(self, token: str, *, key: bytes, now: datetime) -> Principal:
        entry = self._entries.get((key, token))
        if entry is None:
            principal, expires = _verify(token, key=key, now=now, allow_expired_s=0)
            self._entries[(key, token)] = (principal, expires)
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return principal
        principal, expires = entry
        if expires <= int(now.timestamp()):
            del self._entries[(key, token)]
            raise Unauthenticated("access token expired", code="token_expired")
        self._entries.move_to_end((key, token))
        return principal
