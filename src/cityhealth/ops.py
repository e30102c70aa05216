"""Operational endpoints: liveness, readiness (database reachable, schema current), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cityhealth.context import DatabaseDep
from cityhealth.db.failures import RETRY_AFTER_S
from cityhealth.db.schema import ensure_schema_current
from cityhealth.errors import DomainError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and schema current")
async def readyz(database: DatabaseDep) -> dict[str, str]:
    try:
        await database.ping()
        await ensure_schema_current(database)
    except Exception as exc:
        error = DomainError(f"not ready: {exc}", code="not_ready")
        error.status, error.title = 503, "Service unavailable"
        error.headers = {"Retry-After": str(RETRY_AFTER_S)}  # type: ignore[attr-defined]
        raise error from exc
    return {"status": "ready", "database": database.dialect}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    response: Response = request.app.state.metrics.render()
    return response
