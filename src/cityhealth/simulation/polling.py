"""Waiting for a bulk job: poll its status until it ends, and give up on one that makes no progress."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cityhealth.simulation.actors import Actor, SimulationError

POLL_INTERVAL_S = 0.02
# A job whose status and processed rows stay the same this long (wall clock) is taken as stuck. Jobs queue
# behind each other on a busy platform, so the limit is on the lack of progress, not on the job's length.
JOB_STALL_TIMEOUT_S = 600.0
FINISHED = ("completed", "failed")


async def wait_for_job(actor: Actor, job_id: str, *, interval_s: float = POLL_INTERVAL_S,
                       stall_timeout_s: float = JOB_STALL_TIMEOUT_S) -> dict[str, Any]:
    """The job's final status once it has completed; SimulationError if it failed or stalled.

    Each poll is a request with the actor's own timeout; a cancelled wait stops at once (the caller's
    actors close their clients).
    """
    last: tuple[str, int] | None = None
    progress_at = time.monotonic()
    while True:
        status: dict[str, Any] = (await actor.call("GET", f"/api/collection/jobs/{job_id}")).json()
        if status["status"] == "completed":
            return status
        if status["status"] == "failed":
            raise SimulationError(f"{actor.name}: bulk job {job_id} failed: {status.get('error')}",
                                  code="simulation_job_failed")
        seen = (str(status["status"]), int(status["rows_processed"]))
        now = time.monotonic()
        if seen != last:
            last, progress_at = seen, now
        elif now - progress_at >= stall_timeout_s:
            raise SimulationError(
                f"{actor.name}: bulk job {job_id} made no progress in {stall_timeout_s:g} s "
                f"(status {seen[0]}, {seen[1]} rows processed)", code="simulation_job_stalled")
        await asyncio.sleep(interval_s)
