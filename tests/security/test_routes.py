"""Every route of the app declares its authorization and, if it reads, its object rule.

A route added later without `require(...)` in its dependencies, or a read/search/list route without a
declaration in some tests/<room>/object_rules.py, fails here. So does a declared object endpoint whose guard
demands no scope, or whose owner, re-issued without the guard's scope(s), still reaches its own object:
the scope is checked first, the object rule second, and an owner is not a reader by ownership alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from cityhealth.collection.models import Job
from cityhealth.context import SessionDep
from cityhealth.errors import NotFound
from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, Scope
from tests.factories.security import reissued
from tests.security.objects import (
    NOT_OBJECT_SCOPED,
    OBJECT_ENDPOINTS,
    ObjectEndpoint,
    Owner,
    ask,
    load_declarations,
    url_of,
)

# Reachable without a token, each for a reason.
PUBLIC_ROUTES = {
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe",
    ("GET", "/metrics"): "Prometheus scrape (no personal data; bind it to the internal network)",
    ("GET", "/docs"): "the API documentation page (served with local assets)",
    ("GET", "/openapi.json"): "the API description",
    ("POST", "/api/auth/token"): "the OAuth2 token endpoint: the client assertion is the credential",
    ("POST", "/api/auth/login"): "staff login: password and TOTP are the credentials",
    ("POST", "/api/auth/refresh"): "checks the (possibly expired) token and its live session itself",
    ("POST", "/api/auth/residents/register"): "real-name registration: the identity check is the credential",
    ("POST", "/api/auth/residents/login"): "resident login",
    ("GET", "/"): "the public landing page (web room)",
    ("GET", "/login"): "the browser's staff login form (web room)",
    ("POST", "/login"): "the browser's staff login: password and TOTP are the credentials (web room)",
    ("GET", "/dashboard/quality"): "data-quality aggregates per unit, public as the bulletin is (web room)",
    ("GET", "/dashboard/quality/units/{organization_id}"): "one unit's aggregates, no records (web room)",
    ("GET", "/booking/"): "choose a hospital, department and day: public sessions, no personal data (web room)",
    ("GET", "/booking/slots/{slot_id}"): "one slot's page, the SMART feed's public deep link (web room)",
    ("GET", "/booking/login"): "the browser's resident sign-in form (web room)",
    ("POST", "/booking/login"): "resident sign-in: ID number and password are the credentials (web room)",
    ("GET", "/app/login"): "the resident app's sign-in form: the phone (web room)",
    ("POST", "/app/login"): "the resident app's sign-in: send a one-time code to the phone (web room)",
    ("POST", "/app/login/code"): "the resident app's sign-in: the one-time code is the credential (web room)",
    ("POST", "/app/login/choose"): "the resident app's sign-in: an account of the code's verified phone (web room)",
    ("GET", "/app/register"): "the resident app's registration form: the phone (web room)",
    ("POST", "/app/register"): "the resident app's registration: send a one-time code to the phone (web room)",
    ("POST", "/app/register/complete"): "real-name registration: the code, ID number and name (web room)",
    ("GET", "/c/{token}.ics"): "a booking's calendar file by its SMS link: the link's signature is the key",
}
# The monthly bulletin's public pages (reporting room).
PUBLIC_PREFIXES = ("/bulletin/",)


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route context) of every API route, through included routers."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in sorted(context.methods or ()):
                yield method, str(context.path), context


def _guards(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if hasattr(sub.call, "required_scopes"):
            yield sub.call
        yield from _guards(sub)


def _is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES)


def unguarded_routes(app: FastAPI) -> list[str]:
    return [f"{method} {path}" for method, path, context in api_routes(app)
            if not _is_public(method, path) and not any(_guards(context.dependant))]


def _reads(method: str, path: str) -> bool:
    return method == "GET" or (method == "POST" and path.endswith(("/search", "/lookup", "/_search")))


def undeclared_reads(app: FastAPI) -> list[str]:
    load_declarations()
    declared = set(OBJECT_ENDPOINTS) | set(NOT_OBJECT_SCOPED)
    return [f"{method} {path}" for method, path, _ in api_routes(app)
            if _reads(method, path) and not _is_public(method, path) and (method, path) not in declared]


def _scope_guards(context: Any) -> list[Any]:
    return [guard for guard in _guards(context.dependant) if guard.required_scopes]


def _declared(endpoints: Mapping[tuple[str, str], ObjectEndpoint] | None) -> Mapping[tuple[str, str], ObjectEndpoint]:
    if endpoints is None:
        load_declarations()
        return OBJECT_ENDPOINTS
    return endpoints


def scope_less_object_routes(app: FastAPI,
                             endpoints: Mapping[tuple[str, str], ObjectEndpoint] | None = None) -> list[str]:
    """Declared object endpoints whose guard demands no scope: whoever passes the object rule gets in."""
    declared = _declared(endpoints)
    return [f"{method} {path}" for method, path, context in api_routes(app)
            if (method, path) in declared and declared[(method, path)].unscoped is None
            and not _scope_guards(context)]


def scopes_to_withhold(app: FastAPI, endpoint: ObjectEndpoint) -> list[frozenset[Scope]]:
    """Scope sets without which the route must refuse: every scope at once, each scope a `require(…)` names,
    all the scopes of a `require_any(…)` together."""
    withheld = [frozenset(Scope)]
    for method, path, context in api_routes(app):
        if (method, path) == (endpoint.method, endpoint.path):
            for guard in _scope_guards(context):
                scopes = frozenset(guard.required_scopes)
                withheld += [scopes] if getattr(guard, "any_scope", False) else [frozenset({s}) for s in scopes]
    return withheld


async def admitted_without_the_scope(app: FastAPI, client: httpx.AsyncClient, endpoint: ObjectEndpoint) -> list[str]:
    """An owner, re-issued without the route's scope(s), asks for its own object: each answer that is not a
    scope refusal (403 insufficient_scope), as "scopes withheld -> status"."""
    owner = (await endpoint.seed(app, 1))[0]
    if endpoint.kind != "write":  # a write's own-object check would change the object
        response = await ask(client, endpoint, owner, owner)
        assert response.is_success, f"{url_of(endpoint, owner)}: the seed's owner cannot reach its own object"
    admitted = []
    for withheld in scopes_to_withhold(app, endpoint):
        narrowed = Owner(reissued(app, owner.headers, without=withheld))
        response = await ask(client, endpoint, narrowed, owner)
        refused = response.status_code == 403 and response.json().get("code") == "insufficient_scope"
        if not refused:
            shown = "every scope" if withheld == frozenset(Scope) else " ".join(sorted(withheld))
            admitted.append(f"without {shown} -> {response.status_code}")
    return admitted


def test_every_route_outside_the_public_list_requires_a_scope(app: FastAPI) -> None:
    assert unguarded_routes(app) == [], "add Depends(require(Scope.…)) to these routes"


def test_every_object_route_demands_a_scope_before_its_object_rule(app: FastAPI) -> None:
    assert scope_less_object_routes(app) == [], (
        "guard these routes with require(Scope.…) or require_any(…): the object rule alone admits, say, any "
        "staff member of the object's organization (or declare unscoped=… if the objects are the caller's own)")


load_declarations()
SCOPED_ENDPOINTS = sorted((endpoint for endpoint in OBJECT_ENDPOINTS.values() if endpoint.unscoped is None),
                          key=lambda endpoint: (endpoint.path, endpoint.method))


@pytest.mark.parametrize("endpoint", SCOPED_ENDPOINTS, ids=lambda endpoint: f"{endpoint.method} {endpoint.path}")
async def test_an_owner_without_the_routes_scope_is_refused_its_own_object(
        app: FastAPI, client: httpx.AsyncClient, endpoint: ObjectEndpoint) -> None:
    assert await admitted_without_the_scope(app, client, endpoint) == []


def _room(path: str) -> str:
    parts = path.split("/")
    return parts[2] if path.startswith("/api/") and len(parts) > 2 else "web"


def test_every_read_route_declares_its_object_rule(app: FastAPI) -> None:
    missing: dict[str, list[str]] = {}
    for route in undeclared_reads(app):
        missing.setdefault(f"tests/{_room(route.split(' ', 1)[1])}/object_rules.py", []).append(route)
    assert missing == {}, (
        "declare each read route's object rule (docs/security.md, 'Adding an endpoint'): object_endpoint(…) "
        "with owners, or not_object_scoped(…) with the reason, in the file named")


def test_declarations_name_routes_that_exist(app: FastAPI) -> None:
    load_declarations()
    existing = {(method, path) for method, path, _ in api_routes(app)}
    assert sorted((set(OBJECT_ENDPOINTS) | set(NOT_OBJECT_SCOPED)) - existing) == []


def test_public_routes_exist(app: FastAPI) -> None:
    existing = {(method, path) for method, path, _ in api_routes(app)}
    # /openapi.json is a plain Starlette route, outside the API routes walked here.
    assert set(PUBLIC_ROUTES) - {("GET", "/openapi.json")} <= existing


def test_the_enumeration_catches_an_unguarded_and_an_undeclared_route(app: FastAPI) -> None:
    extra = APIRouter()

    @extra.get("/api/forgotten/{item_id}")
    async def forgotten(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @extra.get("/api/guarded/{item_id}")
    async def guarded(item_id: int,
                      principal: Annotated[Principal, Depends(require(Scope.REGISTRY_READ))]) -> dict[str, int]:
        return {"item_id": item_id}

    probe = FastAPI()
    probe.include_router(extra, prefix="/nested")
    assert unguarded_routes(probe) == ["GET /nested/api/forgotten/{item_id}"]
    assert undeclared_reads(probe) == ["GET /nested/api/forgotten/{item_id}", "GET /nested/api/guarded/{item_id}"]


async def test_the_enumeration_catches_an_object_route_that_trusts_the_organization_alone(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    extra = APIRouter()

    @extra.get("/api/probe/jobs/{job_id}")
    async def probe_job(job_id: int, principal: Annotated[Principal, Depends(require())],
                        session: SessionDep) -> dict[str, int]:
        job = await session.get(Job, job_id)
        if job is None or job.organization_id != principal.organization_id:  # the object rule, and nothing else
            raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
        return {"id": job.id}

    app.include_router(extra)
    load_declarations()
    jobs = OBJECT_ENDPOINTS[("GET", "/api/collection/jobs/{job_id}")]
    probe = ObjectEndpoint("GET", "/api/probe/jobs/{job_id}", "read", "a sender reads its own jobs", jobs.seed)
    assert scope_less_object_routes(app, {(probe.method, probe.path): probe}) == ["GET /api/probe/jobs/{job_id}"]
    assert await admitted_without_the_scope(app, client, probe) == ["without every scope -> 200"]
