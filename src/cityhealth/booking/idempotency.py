"""The Idempotency-Key header (IETF httpapi draft) for booking writes.

A key is bound to its result in the same transaction as the booking it made, so a key is either unknown
or tied to a committed outcome: a replay returns that outcome, the same key with another payload is
refused (422), and a request arriving while the first is still running gets 409. "Still running" is
tracked per process in memory and, on PostgreSQL, across processes by a transaction-scoped advisory lock
on the key; no "in flight" row is written, so a refused or crashed request leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

import orjson
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import IdempotencyKey
from cityhealth.clock import Clock
from cityhealth.errors import Conflict, DomainError, ValidationFailed

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)  # a retry later than this is a new request
_MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyContext:
    subject: str
    key: str
    request: tuple[str, str, bytes] = field(repr=False, compare=False)  # method, path, body

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the method, path and the JSON body in canonical form; made when first needed (to compare
        with a stored result, or to store one): a release's thousands of refused attempts need none."""
        method, path, body = self.request
        try:
            # orjson parses to the same values as json (the body passed the strict-JSON check), faster; the
            # canonical text stays json's, so fingerprints stored before still match.
            canonical = json.dumps(orjson.loads(body or b"null"), sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False).encode()
        except ValueError:
            canonical = body
        return hashlib.sha256(method.upper().encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()

    @property
    def advisory_key(self) -> int:
        """A signed 64-bit number for pg_try_advisory_xact_lock."""
        digest = hashlib.sha256(f"booking-idempotency\0{self.subject}\0{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def context_for(subject: str, key: str | None, method: str, path: str, body: bytes) -> IdempotencyContext:
    """Check the header and fingerprint the request (method, path and the JSON body in canonical form)."""
    if key is None or not key.strip():
        error = DomainError(f"this operation needs an {HEADER} header (a unique value per intended request)",
                            code="idempotency_key_missing", field=HEADER, rule="idempotency_key.required")
        error.status, error.title = 400, "Bad request"
        raise error
    key = key.strip()
    if len(key) > _MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(f"{HEADER} must be at most {_MAX_KEY_LENGTH} printable characters",
                               code="idempotency_key_invalid", field=HEADER, rule="idempotency_key.format")
    return IdempotencyContext(subject=subject, key=key, request=(method, path, body))


_in_flight: set[tuple[str, str]] = set()


def in_flight_error() -> Conflict:
    return Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                    code="idempotency_key_in_flight", field=HEADER, rule="idempotency_key.in_flight")


@contextmanager
def claim(context: IdempotencyContext) -> Iterator[None]:
    """Mark the key in flight in this process for the duration of the request."""
    marker = (context.subject, context.key)
    if marker in _in_flight:
        raise in_flight_error()
    _in_flight.add(marker)
    try:
        yield
    finally:
        _in_flight.discard(marker)


def replay_of(context: IdempotencyContext, fingerprint: str | None, status: int | None,
              body: str | None) -> Replay | None:
    """The stored outcome for this key, if any; the same key with another payload is refused."""
    if fingerprint is None or status is None or body is None:
        return None
    if fingerprint != context.fingerprint:
        raise ValidationFailed(f"this {HEADER} was already used for a different request",
                               code="idempotency_key_reused", field=HEADER, rule="idempotency_key.reused")
    return Replay(status=status, body=body)


async def lock_key(session: AsyncSession, context: IdempotencyContext) -> None:
    """On PostgreSQL, refuse when another process is running a request with this key."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite writers are serialised; the in-process claim is the whole story there
    locked = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                    {"key": context.advisory_key})).scalar_one()
    if not locked:
        raise in_flight_error()


async def stored(session: AsyncSession, context: IdempotencyContext) -> Replay | None:
    row = (await session.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.response_status, IdempotencyKey.response_body)
        .where(IdempotencyKey.subject == context.subject, IdempotencyKey.key == context.key)
    )).first()
    return None if row is None else replay_of(context, row[0], row[1], row[2])


async def store(session: AsyncSession, clock: Clock, context: IdempotencyContext, status: int, body: str) -> None:
    now = clock.now()
    await session.execute(insert(IdempotencyKey).values(
        subject=context.subject, key=context.key, fingerprint=context.fingerprint, response_status=status,
        response_body=body, created_at=now, expires_at=now + RETENTION))


async def purge_expired(session: AsyncSession, clock: Clock) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= clock.now()))
    return int(getattr(result, "rowcount", 0) or 0)
