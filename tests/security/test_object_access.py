"""Object-level access: every principal asks for every other principal's object, on every declared
read, search and list endpoint (tests/<room>/object_rules.py). Not one may succeed.

Each endpoint gets enough owners that the pairs over all endpoints number at least 10,000; each owner
first reads its own object, so a broken seed cannot make the test pass by refusing everyone.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from fastapi import FastAPI

from tests.security.objects import OBJECT_ENDPOINTS, ObjectEndpoint, Owner, ask, load_declarations, url_of

# Some 10,000 requests: minutes, not seconds. `-m "not slow"` leaves it out of a quick local run.
pytestmark = pytest.mark.slow

MIN_PAIRS = 10_000
MIN_OWNERS = 8
# Requests in flight at once: the pairs run faster, and the rules hold under concurrency too.
CONCURRENT_REQUESTS = 8

load_declarations()
ENDPOINTS = sorted(OBJECT_ENDPOINTS.values(), key=lambda endpoint: (endpoint.path, endpoint.method))


def owners_per_endpoint(endpoints: int) -> int:
    """n with n·(n−1)·endpoints ≥ MIN_PAIRS."""
    n = max(MIN_OWNERS, math.ceil((1 + math.sqrt(1 + 4 * MIN_PAIRS / max(endpoints, 1))) / 2))
    while n * (n - 1) * endpoints < MIN_PAIRS:
        n += 1
    return n


def _leaks(endpoint: ObjectEndpoint, response: httpx.Response, target: Owner) -> bool:
    if not response.is_success:
        return False
    if endpoint.kind == "list":
        return target.marker is not None and target.marker in response.text
    return True


async def _own_object_is_reachable(client: httpx.AsyncClient, endpoint: ObjectEndpoint, owner: Owner) -> None:
    response = await ask(client, endpoint, owner, owner)
    assert response.is_success, (f"{endpoint.method} {endpoint.path}: an owner cannot reach its own object "
                                 f"({response.status_code} {response.text[:200]}): the seed is broken")
    if endpoint.kind == "list":
        assert owner.marker, "a list endpoint's owners need a marker"
        assert owner.marker in response.text, "an owner's list does not show its own marker"


def test_the_declared_endpoints_give_at_least_10000_pairs() -> None:
    assert ENDPOINTS, "no object endpoints declared"
    n = owners_per_endpoint(len(ENDPOINTS))
    assert n * (n - 1) * len(ENDPOINTS) >= MIN_PAIRS


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: f"{endpoint.method} {endpoint.path}")
async def test_no_principal_reaches_another_principals_object(app: FastAPI, client: httpx.AsyncClient,
                                                              endpoint: ObjectEndpoint) -> None:
    owners = await endpoint.seed(app, owners_per_endpoint(len(ENDPOINTS)))
    assert len(owners) >= MIN_OWNERS
    if endpoint.kind != "write":  # a write's own-object check would change the object: done last
        for owner in owners:
            await _own_object_is_reachable(client, endpoint, owner)
    successes: list[str] = []
    gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def attempt(asker: Owner, target: Owner) -> None:
        async with gate:
            response = await ask(client, endpoint, asker, target)
        if _leaks(endpoint, response, target):
            successes.append(f"{url_of(endpoint, target)} -> {response.status_code}")

    await asyncio.gather(*(attempt(asker, target) for asker in owners for target in owners if target is not asker))
    assert successes == [], f"{endpoint.rule}: {len(successes)} cross-owner successes, e.g. {successes[:3]}"
    if endpoint.kind == "write":
        await _own_object_is_reachable(client, endpoint, owners[0])
