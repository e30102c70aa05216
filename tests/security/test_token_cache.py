"""The verified-token cache and the cache-first client liveness check: faster, never more permissive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Unauthenticated
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.sessions import ClientStateCache, client_live_from_cache
from cityhealth.security.tokens import VerifiedTokens, issue_access_token

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
NOW = datetime(2022, 7, 1, 8, 0, tzinfo=UTC)
CLIENT = Principal(kind=PrincipalKind.CLIENT, subject="client:his-gulou", scopes=frozenset({Scope.BOOKING_WRITE}),
                   organization_id=3, client_app_id=5)


def _token(principal: Principal = CLIENT, *, key: bytes = KEY, ttl_s: int = 300) -> str:
    return issue_access_token(principal, key=key, now=NOW, ttl_s=ttl_s)


def test_a_cached_token_gives_the_same_principal() -> None:
    tokens = VerifiedTokens()
    token = _token()
    first = tokens.decode(token, key=KEY, now=NOW)
    assert first == CLIENT
    assert tokens.decode(token, key=KEY, now=NOW + timedelta(seconds=10)) is first


def test_expiry_is_checked_on_every_hit() -> None:
    tokens = VerifiedTokens()
    token = _token(ttl_s=60)
    tokens.decode(token, key=KEY, now=NOW)
    with pytest.raises(Unauthenticated) as caught:
        tokens.decode(token, key=KEY, now=NOW + timedelta(seconds=60))
    assert caught.value.code == "token_expired"
    with pytest.raises(Unauthenticated):  # and stays refused (the entry is gone, full verification refuses)
        tokens.decode(token, key=KEY, now=NOW + timedelta(seconds=61))


def test_a_token_verified_under_one_key_is_not_accepted_under_another() -> None:
    tokens = VerifiedTokens()
    token = _token()
    tokens.decode(token, key=KEY, now=NOW)
    with pytest.raises(Unauthenticated) as caught:
        tokens.decode(token, key=OTHER_KEY, now=NOW)
    assert caught.value.code == "invalid_token"


def test_a_tampered_token_is_a_miss_and_refused() -> None:
    tokens = VerifiedTokens()
    token = _token()
    tokens.decode(token, key=KEY, now=NOW)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(Unauthenticated):
        tokens.decode(forged, key=KEY, now=NOW)


def test_the_cache_is_bounded() -> None:
    tokens = VerifiedTokens(capacity=3)
    issued = [_token(Principal(kind=PrincipalKind.CLIENT, subject=f"client:c{i}", scopes=frozenset()))
              for i in range(5)]
    for token in issued:
        tokens.decode(token, key=KEY, now=NOW)
    assert len(tokens) == 3
    assert tokens.decode(issued[0], key=KEY, now=NOW).subject == "client:c0"  # evicted, verified again


def test_client_liveness_from_the_cache() -> None:
    clients = ClientStateCache()
    assert client_live_from_cache(CLIENT, clients, NOW) is False  # unknown: the database decides
    clients.put("his-gulou", True, NOW)
    assert client_live_from_cache(CLIENT, clients, NOW + timedelta(seconds=29)) is True
    assert client_live_from_cache(CLIENT, clients, NOW + timedelta(seconds=30)) is False  # stale
    clients.put("his-gulou", False, NOW)
    with pytest.raises(Unauthenticated) as caught:
        client_live_from_cache(CLIENT, clients, NOW)
    assert caught.value.code == "client_revoked"


def test_staff_and_residents_always_go_to_the_database() -> None:
    staff = Principal(kind=PrincipalKind.STAFF, subject="staff:1", scopes=frozenset(), session_id="s")
    clients = ClientStateCache()
    clients.put("1", True, NOW)
    assert client_live_from_cache(staff, clients, NOW) is False


async def test_concurrent_requests_of_an_uncached_client_share_one_liveness_check(
    monkeypatch: pytest.MonkeyPatch, database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    import asyncio

    from cityhealth.security import dependencies

    checks: list[str] = []

    async def slow_check(session: object, clock: SimulatedClock, principal: Principal, *, idle_timeout_s: int,
                         clients: ClientStateCache) -> None:
        checks.append(principal.subject)
        await asyncio.sleep(0.05)
        clients.put(principal.subject.split(":", 1)[1], True, clock.now())

    monkeypatch.setattr(dependencies, "ensure_live", slow_check)
    clients = ClientStateCache()
    await asyncio.gather(*(dependencies._check_live(database, clock, settings, CLIENT, clients) for _ in range(20)))
    assert checks == ["client:his-gulou"]  # one transaction, not twenty
    assert clients.checking == {}


async def test_waiters_on_a_revoked_client_are_refused_too(
    monkeypatch: pytest.MonkeyPatch, database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    import asyncio

    from cityhealth.security import dependencies

    async def revoked(session: object, clock: SimulatedClock, principal: Principal, *, idle_timeout_s: int,
                      clients: ClientStateCache) -> None:
        await asyncio.sleep(0.02)
        clients.put("his-gulou", False, clock.now())
        raise Unauthenticated("this client is unknown or has been revoked", code="client_revoked")

    monkeypatch.setattr(dependencies, "ensure_live", revoked)
    clients = ClientStateCache()
    answers = await asyncio.gather(*(dependencies._check_live(database, clock, settings, CLIENT, clients)
                                     for _ in range(5)), return_exceptions=True)
    assert [getattr(answer, "code", None) for answer in answers] == ["client_revoked"] * 5
    assert clients.checking == {}
