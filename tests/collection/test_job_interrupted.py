"""A bulk job the database interrupts (its connection lost, a deadlock's victim) is not the upload's failure: it
stays running from its last committed chunk, is run again, and completes with every record stored once. A job
whose runs keep dying at the same chunk is stopped there with the reason, and an operator's rerun resumes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth import queue
from cityhealth.clock import SimulatedClock
from cityhealth.collection import jobs
from cityhealth.collection.api import runtime
from cityhealth.collection.models import DailyCount
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.db.failure_kinds import is_transient
from tests.collection.conftest import Unit, stored_count, wait_for_job
from tests.collection.test_jobs import ndjson, upload
from tests.factories.security import admin_headers

RECORDS = 12


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short heartbeat: were the queue's retry to miss the interrupted job on PostgreSQL, the stalled-job check
    would still defer it again within seconds (the retry itself waits RETRY_PAUSE_S, on either backend)."""
    return settings.model_copy(update={"worker_heartbeat_s": 1, "worker_stalled_after_s": 2})


class _Deadlock(Exception):
    sqlstate = "40P01"


def _write_chunk_failing(monkeypatch: pytest.MonkeyPatch, fails: Callable[[int], BaseException | None]) -> list[int]:
    """jobs._write_chunk replaced by one that raises what `fails(n)` gives for its n-th call (1-based), if anything,
    and writes the chunk otherwise. Returns the call counter (a one-item list)."""
    real, calls = jobs._write_chunk, [0]

    async def failing(*arguments: Any, **options: Any) -> None:
        calls[0] += 1
        failure = fails(calls[0])
        if failure is not None:
            raise failure
        await real(*arguments, **options)

    monkeypatch.setattr(jobs, "_write_chunk", failing)
    return calls


@pytest.mark.parametrize("failure", [ConnectionResetError("connection reset by peer"), _Deadlock("deadlock detected")],
                         ids=["connection-lost", "deadlock"])
async def test_a_job_the_database_interrupts_resumes_and_stores_each_record_once(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    monkeypatch: pytest.MonkeyPatch, failure: Exception,
) -> None:
    app.state.tasks.resources[jobs.CHUNK_ROWS_SETTING] = 3
    monkeypatch.setattr(queue, "RETRY_PAUSE_S", 0.05)
    # The second chunk's transaction is interrupted once: the first is committed.
    calls = _write_chunk_failing(monkeypatch, lambda call: failure if call == 2 else None)
    response = await upload(client, hospital, ndjson(hospital, clock, RECORDS))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await wait_for_job(app, job_id)
    job = (await client.get(f"/api/collection/jobs/{job_id}", headers=hospital.headers)).json()
    assert (job["status"], job["counts"], job.get("error")) == ("completed", {"received": RECORDS, "accepted": RECORDS},
                                                                None)
    assert calls[0] == RECORDS // 3 + 1  # every chunk written once, the interrupted one twice
    assert await stored_count(database) == RECORDS
    async with database.transaction() as session:
        accepted = (await session.execute(select(func.sum(DailyCount.accepted)))).scalar_one()
    assert accepted == RECORDS


def test_only_the_databases_own_passing_failures_are_transient() -> None:
    assert is_transient(ConnectionResetError())
    assert is_transient(_Deadlock())
    serialization = type("SerializationFailure", (Exception,), {"sqlstate": "40001"})
    assert is_transient(RuntimeError("wrapped")) is False
    wrapped = RuntimeError("the chunk failed")
    wrapped.__cause__ = serialization()
    assert is_transient(wrapped)
    unique = type("UniqueViolation", (Exception,), {"sqlstate": "23505"})
    assert not is_transient(unique())  # a bad statement or bad data: the job fails, and says why
    assert not is_transient(ValueError("a line that is not JSON"))


class _WorkerDied(BaseException):
    """What a run cut short by its process's death leaves behind: nothing after it runs (no handler, no row)."""


async def test_a_job_whose_runs_keep_dying_at_one_chunk_is_stopped_there_and_a_rerun_resumes_it(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deferred: list[dict[str, Any]] = []

    async def no_task(session: Any, name: str, **arguments: Any) -> None:
        deferred.append(arguments)  # the test runs the job itself, as a worker would, run after run

    monkeypatch.setattr(queue, "defer", no_task)
    real = jobs._write_chunk
    calls = _write_chunk_failing(monkeypatch, lambda call: _WorkerDied() if call > 1 else None)  # dies at the 2nd
    response = await upload(client, hospital, ndjson(hospital, clock, RECORDS))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert deferred == [{"job_id": job_id}]
    collector, _ = runtime(app)
    for _ in range(1 + jobs.MAX_RUNS_WITHOUT_PROGRESS):  # the first run commits a chunk; then five make no progress
        with pytest.raises(_WorkerDied):
            await jobs.process_job(database, collector, clock, job_id, chunk_rows=3)
    await jobs.process_job(database, collector, clock, job_id, chunk_rows=3)  # stops it instead of running it
    assert calls[0] == 1 + 1 + jobs.MAX_RUNS_WITHOUT_PROGRESS
    job = (await client.get(f"/api/collection/jobs/{job_id}", headers=hospital.headers)).json()
    assert job["status"] == "failed"
    assert job["error"].startswith("stopped at record 4: the job was started 5 times")
    assert "The 3 records before it are stored" in job["error"]
    assert await stored_count(database) == 3
    await jobs.process_job(database, collector, clock, job_id, chunk_rows=3)  # a task left over: still stopped
    assert calls[0] == 1 + 1 + jobs.MAX_RUNS_WITHOUT_PROGRESS

    monkeypatch.setattr(jobs, "_write_chunk", real)  # the cause found and mended
    rerun = await client.post(f"/api/collection/jobs/{job_id}/rerun", headers=await admin_headers(app))
    assert rerun.status_code == 200, rerun.text
    assert (rerun.json()["status"], rerun.json()["counts"]) == ("completed", {"received": RECORDS, "accepted": RECORDS})
    assert await stored_count(database) == RECORDS
