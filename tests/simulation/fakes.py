"""Stand-in platforms for the simulator's actors: one that answers from a script, hangs, or fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cityhealth.clock import SimulatedClock
from cityhealth.simulation.actors import Actor

START = datetime(2024, 2, 1, 9, tzinfo=UTC)


class Caller(Actor):
    """An actor whose token needs no request: counts its renewals."""

    def __init__(self, app: FastAPI, clock: SimulatedClock, *, timeout_s: float = 5.0) -> None:
        super().__init__(app, clock, "198.51.100.9", "test caller", timeout_s=timeout_s)
        self.renewals = 0

    async def _fetch_token(self) -> tuple[str, int]:
        self.renewals += 1
        await asyncio.sleep(0)  # a renewal takes a moment: concurrent callers overlap it
        return f"token-{self.renewals}", 300


def job_platform(statuses: Iterator[dict[str, Any] | str]) -> FastAPI:
    """GET /api/collection/jobs/{id} answers the next status; "hang" never answers, "fail" raises."""
    app = FastAPI()
    app.state.polls = 0

    @app.get("/api/collection/jobs/{job_id}")
    async def job(job_id: str, request: Request) -> JSONResponse:
        request.app.state.polls += 1
        status = next(statuses)
        if status == "hang":
            await asyncio.sleep(3600)
        if status == "fail":
            raise RuntimeError("the platform broke")
        assert isinstance(status, dict)
        return JSONResponse({"id": job_id, **status})

    return app


def running(rows: int) -> dict[str, Any]:
    return {"status": "running", "rows_processed": rows, "error": None}


def completed(rows: int) -> dict[str, Any]:
    return {"status": "completed", "rows_processed": rows, "error": None}
