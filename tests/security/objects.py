"""Object-level access declarations: how each read, search and list endpoint says whose objects it shows.

Every room declares its endpoints in `tests/<room>/object_rules.py` (found automatically):

    @object_endpoint("GET", "/api/booking/bookings/{booking_id}", kind="read",
                     rule="a resident sees only their own bookings")
    async def bookings(app: FastAPI, owners: int) -> list[Owner]:
        ...  # create `owners` principals, each with one object of their own

    not_object_scoped("GET", "/api/registry/areas", "reference data every registry reader may see")

tests/security/test_object_access.py then asks, as each owner, for every other owner's object: a `read`
(or `write`) must not succeed, a `list` must not show the other owner's `marker`. tests/security/
test_routes.py fails while a GET route (or a POST …/search or …/lookup) has neither declaration, and while
a declared endpoint's guard demands no scope or lets an owner re-issued without it reach its own object.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import FastAPI

Kind = Literal["read", "list", "write"]


@dataclass(frozen=True)
class Owner:
    """A principal (as request headers) and where its own object is."""

    headers: dict[str, str]
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    marker: str | None = None  # text that appears in a `list` response only if it shows this owner's object


Seed = Callable[[FastAPI, int], Awaitable[list[Owner]]]


@dataclass(frozen=True)
class ObjectEndpoint:
    method: str
    path: str
    kind: Kind
    rule: str
    seed: Seed
    # Why the route may admit any authenticated caller (its objects are the caller's own sessions); None for
    # every other endpoint, whose guard must demand a scope before the object rule runs (test_routes.py).
    unscoped: str | None = None


OBJECT_ENDPOINTS: dict[tuple[str, str], ObjectEndpoint] = {}
NOT_OBJECT_SCOPED: dict[tuple[str, str], str] = {}


def object_endpoint(method: str, path: str, *, kind: Kind, rule: str,
                    unscoped: str | None = None) -> Callable[[Seed], Seed]:
    def register(seed: Seed) -> Seed:
        OBJECT_ENDPOINTS[(method.upper(), path)] = ObjectEndpoint(method.upper(), path, kind, rule, seed, unscoped)
        return seed

    return register


def not_object_scoped(method: str, path: str, reason: str) -> None:
    """An endpoint without owners (reference data, administrators' lists): say why."""
    NOT_OBJECT_SCOPED[(method.upper(), path)] = reason


def load_declarations() -> None:
    """Import every room's tests/<room>/object_rules.py."""
    tests_dir = Path(__file__).resolve().parents[1]
    for module in sorted(tests_dir.glob("*/object_rules.py")):
        importlib.import_module(f"tests.{module.parent.name}.object_rules")


def url_of(endpoint: ObjectEndpoint, owner: Owner) -> str:
    """The endpoint's path with the owner's object filled in."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(owner.path[m.group(1)]), endpoint.path)


async def ask(client: httpx.AsyncClient, endpoint: ObjectEndpoint, asker: Owner, target: Owner) -> httpx.Response:
    """The endpoint's request for `target`'s object, sent with `asker`'s credentials."""
    return await client.request(endpoint.method, url_of(endpoint, target), headers=asker.headers,
                                params=target.query or None, json=target.json)
