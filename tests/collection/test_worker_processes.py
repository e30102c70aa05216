"""Bulk jobs taken by `cityhealth worker` processes sharing one PostgreSQL database.

Two workers, each in a working directory of its own, take the jobs; one is killed with SIGKILL in the
middle of a job. Its job is taken up again from the last committed chunk by the other, and every job
completes with every count exact: nothing lost, nothing counted twice, checked from the database.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, text

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import DailyCount, Job, JobRejection, Record
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit
from tests.conftest import BACKEND
from tests.factories.collection import make_record

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="workers share a PostgreSQL database")

JOBS = 3
RECORDS = 6_000
# Small chunks for the workers: a job is sixty transactions, long enough on a quiet machine for both workers to
# be inside one at the same moment (at the default 2,500 rows each job could end before the other began).
CHUNK_ROWS = 100
# A `cityhealth worker` registers two procrastinate workers (worker.run_worker: the rooms' tasks and the periodic
# queue), so one process alone shows two rows in procrastinate_workers.
LOOPS_PER_WORKER = 2
_KEYS = {name: base64.urlsafe_b64encode(os.urandom(32)).decode() for name in
         ("field_encryption_key", "lookup_hmac_key", "token_signing_key")}
_SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The server defers the jobs and runs none (server_worker_concurrency=0): only the workers do."""
    return Settings(
        env=Environment.TEST,
        database_url=database_url,
        var_dir=tmp_path / "server" / "var",
        simulated_clock=True,
        public_base_url="https://cityhealth.test",
        server_worker_concurrency=0,
        **{name: SecretStr(value) for name, value in _KEYS.items()},
    )


def _start_worker(settings: Settings, directory: Path) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    environment = {
        **os.environ,
        "PYTHONPATH": f"{_SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "CITYHEALTH_ENV": "test",
        "CITYHEALTH_DATABASE_URL": settings.effective_database_url,
        "CITYHEALTH_VAR_DIR": str(directory / "var"),
        "CITYHEALTH_WORKER_HEARTBEAT_S": "1",
        "CITYHEALTH_WORKER_STALLED_AFTER_S": "3",
        "CITYHEALTH_BULK_CHUNK_ROWS": str(CHUNK_ROWS),
        **{f"CITYHEALTH_{name.upper()}": value for name, value in _KEYS.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from cityhealth.cli import main; main()", "worker", "--concurrency", "1"],
        cwd=directory,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(directory / "worker.log").open("wb"),
    )


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [_start_worker(settings, tmp_path / f"worker-{n}") for n in (1, 2)]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _body(unit: Unit, clock: SimulatedClock, job: int) -> bytes:
    at = clock.now() - timedelta(hours=3)
    return b"".join(
        orjson.dumps({"form": "outpatient_visit", **make_record("outpatient_visit", unit.code, f"j{job}-{i}", at)})
        + b"\n"
        for i in range(RECORDS)
    )


def _log_tail(log: Path, lines: int = 30) -> list[str]:
    """The end of a worker's log, without the lines every worker prints as it starts (its periodic schedule)."""
    said = log.read_text(errors="replace").splitlines()
    startup = ("registering_periodic_task", "loading_blueprint")
    return [line for line in said if not any(word in line for word in startup)][-lines:]


async def _state(database: Database, directory: Path) -> str:
    """What explains a timeout: the jobs' rows, the queue's jobs and workers, the end of each worker's log."""
    lines = []
    async with database.transaction() as session:
        for query in (
            "SELECT id, status, next_position, error FROM collection_jobs ORDER BY id",
            "SELECT id, task_name, status, lock, worker_id, attempts, args FROM procrastinate_jobs ORDER BY id",
            "SELECT id, last_heartbeat, now() - last_heartbeat FROM procrastinate_workers ORDER BY id",
        ):
            lines.append(query)
            lines.extend(f"  {tuple(row)}" for row in await session.execute(text(query)))
    for log in sorted(directory.glob("worker-*/worker.log")):
        lines.append(f"{log}:")
        lines.extend(f"  {line}" for line in _log_tail(log))
    return "\n".join(lines)


Process = subprocess.Popen[bytes]


def _supervise(
    workers: list[Process], victim: Process | None, start: Callable[[int], Process], directory: Path
) -> None:
    """The test as the workers' supervisor (systemd's part in production): a `cityhealth worker` exits 1 when its
    connection to the queue fails, for its supervisor to start it again. A worker other than the one killed that
    ended is started again (`start(its number)`), with a warning carrying the end of its log: a run that needed it
    is seen in the warnings summary, not hidden."""
    for n, process in enumerate(workers):
        if process is victim or process.poll() is None:
            continue
        logs = sorted(directory.glob(f"worker-{n + 1}*/worker.log"))
        tail = "\n".join(line for log in logs for line in _log_tail(log))
        warnings.warn(f"worker {n + 1} ended on its own (exit {process.returncode}); started again. Its log ends:\n"
                      f"{tail}", stacklevel=2)
        workers[n] = start(n + 1)


async def test_what_explains_a_timeout_reads_the_jobs_queue_and_logs(database: Database, tmp_path: Path) -> None:
    (tmp_path / "worker-1").mkdir()
    (tmp_path / "worker-1" / "worker.log").write_text("loading_blueprint x\nthe job failed: no such table\n")
    said = await _state(database, tmp_path)
    assert "FROM procrastinate_workers" in said  # each query ran (a wrong column name would raise here)
    assert "the job failed: no such table" in said
    assert "loading_blueprint" not in said


def test_the_supervisor_starts_again_a_worker_that_ended_on_its_own_and_says_so(tmp_path: Path) -> None:
    def sleeper() -> Process:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    (tmp_path / "worker-2").mkdir()
    (tmp_path / "worker-2" / "worker.log").write_text("registering_periodic_task x\nlost the connection to the queue\n")
    victim, alive = sleeper(), sleeper()
    ended = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    ended.wait()
    victim.kill()
    victim.wait()
    workers, started = [victim, ended, alive], []

    def start(n: int) -> Process:
        started.append(n)
        return sleeper()

    try:
        with pytest.warns(UserWarning, match=r"worker 2 ended on its own \(exit 1\)") as said:
            _supervise(workers, victim, start, tmp_path)
        assert started == [2]  # not the killed one, not the one still running
        assert workers[0] is victim
        assert workers[2] is alive
        assert workers[1].poll() is None  # its replacement runs
        message = str(said[0].message)
        assert "lost the connection to the queue" in message
        assert "registering_periodic_task" not in message  # the startup lines are left out
        _supervise(workers, victim, start, tmp_path)  # nothing ended since: nothing started
        assert started == [2]
    finally:
        for process in workers:
            process.kill()
            process.wait()


async def _positions(database: Database) -> dict[int, tuple[str, int]]:
    async with database.transaction() as session:
        rows = await session.execute(select(Job.id, Job.status, Job.next_position))
        return {job_id: (status, position) for job_id, status, position in rows}


async def _until(
    condition: Callable[[], Awaitable[bool]], what: str, explain: Callable[[], Awaitable[str]], timeout_s: float = 240.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{await explain()}")
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_job_loses_nothing_and_counts_nothing_twice(
    app: FastAPI,
    client: httpx.AsyncClient,
    hospital: Unit,
    clock: SimulatedClock,
    database: Database,
    workers: list[subprocess.Popen[bytes]],
    settings: Settings,
    tmp_path: Path,
) -> None:
    async def explain() -> str:
        return await _state(database, tmp_path)

    def supervise() -> None:
        def again(n: int) -> Process:
            return _start_worker(settings, tmp_path / f"worker-{n}-again-{time.monotonic_ns()}")

        _supervise(workers, victim, again, tmp_path)

    async def both_workers_listening() -> bool:
        async with database.transaction() as session:
            loops = (await session.execute(text("SELECT count(*) FROM procrastinate_workers"))).scalar_one()
            return bool(loops >= LOOPS_PER_WORKER * len(workers))

    # Both workers first: a worker slow to start on a loaded machine would leave every job to the other one,
    # and no moment would come with both inside a job.
    await _until(both_workers_listening, "both workers to start", explain)
    ids = []
    for job in range(JOBS):
        response = await client.post(
            "/api/collection/jobs",
            content=_body(hospital, clock, job),
            headers={**hospital.headers, "content-type": "application/x-ndjson"},
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    async def two_jobs_half_done() -> bool:
        positions = await _positions(database)
        return sum(1 for status, position in positions.values() if status == "running" and 0 < position < RECORDS) >= 2

    # Both workers are each inside a job, past its first chunk and before its last: kill one of them.
    await _until(two_jobs_half_done, "both workers to be inside a job", explain)
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    interrupted = {job_id: position for job_id, (status, position) in (await _positions(database)).items()
                   if status == "running" and position < RECORDS}

    async def taken_up_again() -> bool:
        supervise()
        positions = await _positions(database)
        return all(positions[job_id][1] > position for job_id, position in interrupted.items())

    # Heartbeat 1 s, stalled after 3 s: the stalled-job check queues the job again within seconds; the other
    # worker (one task at a time) takes it once it is free, possibly after its own job and the third one.
    await _until(taken_up_again, "the killed worker's job to move again", explain)
    print(f"killed worker's job moving again after {time.monotonic() - killed_at:.1f} s")  # noqa: T201

    async def all_completed() -> bool:
        supervise()
        return all(status == "completed" for status, _ in (await _positions(database)).values())

    await _until(all_completed, "every job to complete", explain)
    assert workers[1].poll() is None  # the survivor (or, after a warning, the one started in its place) did the rest
    assert interrupted  # a job really was cut short
    async with database.transaction() as session:
        jobs = {job.id: job for job in (await session.execute(select(Job))).scalars()}
        stored = (await session.execute(select(func.count()).select_from(Record))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(Record.record_id))))).scalar_one()
        daily = (await session.execute(select(func.sum(DailyCount.received), func.sum(DailyCount.accepted)))).one()
        rejected = (await session.execute(select(func.count()).select_from(JobRejection))).scalar_one()
    for job_id in ids:
        job = jobs[job_id]
        assert (job.status, job.next_position, job.error) == ("completed", RECORDS, None)
        assert job.counts == {"received": RECORDS, "accepted": RECORDS}
    assert stored == distinct == JOBS * RECORDS
    assert tuple(daily) == (JOBS * RECORDS, JOBS * RECORDS)
    assert rejected == 0

    async def nothing_left_queued() -> bool:
        async with database.transaction() as session:
            return (await session.execute(text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'collection.process_job' "
                "AND status IN ('todo', 'doing')"))).scalar_one() == 0

    # A job's row says "completed" a moment before its task returns and procrastinate deletes the task; a task
    # the stalled-job check queued again for the killed worker finds its job completed and ends at once.
    await _until(nothing_left_queued, "no collection task to be left in the queue", explain, timeout_s=60.0)
