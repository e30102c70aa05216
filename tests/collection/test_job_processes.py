"""Bulk jobs run by ingest processes (CITYHEALTH_INGEST_PROCESSES): the same results, the simulated clock
followed across processes, and nothing lost or counted twice when an ingest process dies mid-job."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.collection.job_processes import JobProcesses
from cityhealth.collection.models import DailyCount, Job
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, stored_count
from tests.collection.test_jobs import finished, ndjson, upload
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="ingest processes need PostgreSQL")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(env=Environment.TEST, database_url=database_url, var_dir=tmp_path / "var",
                    simulated_clock=True, ingest_processes=1)


def _processes(app: FastAPI) -> JobProcesses:
    jobs = runtime(app)[1]
    assert isinstance(jobs, JobProcesses)
    return jobs


async def _status(database: Database, job_id: int) -> str:
    async with database.transaction() as session:
        return str((await session.execute(select(Job.status).where(Job.id == job_id))).scalar_one())


async def test_a_job_runs_in_an_ingest_process_on_the_simulated_clock(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    clock.advance(timedelta(minutes=2))  # after the process started: it must see the clock move
    body = ndjson(hospital, clock, 5) + b"{oops\n"
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    assert (job["status"], job["counts"]) == ("completed", {"received": 6, "accepted": 5, "rejected": 1})
    assert await stored_count(database) == 5
    assert datetime.fromisoformat(str(job["started_at"])) == clock.now()
    assert datetime.fromisoformat(str(job["finished_at"])) == clock.now()
    assert len(_processes(app).pids) == 1
    assert os.getpid() not in _processes(app).pids


async def test_a_job_cut_short_by_a_dead_ingest_process_resumes_in_its_replacement_and_counts_once(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock,
    database: Database,
) -> None:
    processes = _processes(app)
    records = 30_000  # three chunks: long enough to be killed while it runs
    response = await upload(client, hospital, ndjson(hospital, clock, records))
    job_id = response.json()["id"]
    while await _status(database, job_id) == "queued":
        await asyncio.sleep(0.005)
    [pid] = processes.pids
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert await _status(database, job_id) == "running"  # orphaned: its process is gone
    # The next upload finds the process dead: another takes its place, and the orphan is handed out again.
    other = await finished(app, client, other_hospital, await upload(client, other_hospital, ndjson(other_hospital,
                                                                                               clock, 3)))
    assert other["status"] == "completed"
    await processes.wait(job_id)
    job = (await client.get(f"/api/collection/jobs/{job_id}", headers=hospital.headers)).json()
    assert (job["status"], job["counts"]) == ("completed", {"received": records, "accepted": records})
    assert pid not in processes.pids
    assert await stored_count(database) == records + 3
    async with database.transaction() as session:
        received = (await session.execute(select(func.sum(DailyCount.received)))).scalar_one()
    assert received == records + 3
