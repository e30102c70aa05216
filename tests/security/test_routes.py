"""Every route of the app declares its authorization and, if it reads, its object rule.

A route added later without `require(...)` in its dependencies, or a read/search/list route without a
declaration in some tests/<room>/object_rules.py, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, Scope
from tests.security.objects import NOT_OBJECT_SCOPED, OBJECT_ENDPOINTS, load_declarations

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


def test_every_route_outside_the_public_list_requires_a_scope(app: FastAPI) -> None:
    assert unguarded_routes(app) == [], "add Depends(require(Scope.…)) to these routes"


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
