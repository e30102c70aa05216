"""The bulk-worker crash drill (PostgreSQL, the drill's own cluster): two `cityhealth worker` processes take the
bulk jobs; again and again one of them is SIGKILLed while a job is between its first and last chunk, and a new
worker is started in its place. As tests/collection/test_worker_processes.py does once, here many times: every
job completes, every record is stored once, the counters equal a recount, and the chain verifies after each kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import orjson
from sqlalchemy import func, select

from cityhealth.collection.models import Job, Record
from cityhealth.db.admin import create_database
from cityhealth.db.engine import Database
from cityhealth.security.audit_verify import verify_chain
from tests.drills.checks import recount
from tests.drills.cluster import Cluster, workspace
from tests.drills.platform import FORM, Platform, client_of, platform, start_worker

RECORDS_PER_JOB = 3_000
CHUNK_ROWS = 100  # thirty transactions a job: many moments to be killed inside one


@dataclass
class WorkerCrashResult:
    crashes: int = 0
    jobs: int = 0
    completed: int = 0
    expected: int = 0
    stored: int = 0
    distinct: int = 0
    counters_ok: bool = False
    audit_failures: int = 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.distinct)

    @property
    def duplicated(self) -> int:
        return self.stored - self.distinct

    @property
    def ok(self) -> bool:
        return (self.crashes > 0 and self.completed == self.jobs and not self.lost and not self.duplicated
                and self.counters_ok and not self.audit_failures)

    def line(self) -> str:
        return (f"crash_worker: ok={int(self.ok)} crashes={self.crashes} jobs={self.jobs} completed={self.completed} "
                f"stored={self.stored} lost={self.lost} duplicated={self.duplicated} "
                f"counters_ok={int(self.counters_ok)} audit_failures={self.audit_failures}")


def _body(site: Platform, job: int) -> bytes:
    return b"".join(orjson.dumps({"form": FORM, **record}) + b"\n"
                    for record in site.batch(f"j{job}", RECORDS_PER_JOB))


async def _positions(database: Database) -> dict[int, tuple[str, int]]:
    async with database.transaction() as session:
        rows = await session.execute(select(Job.id, Job.status, Job.next_position))
        return {job_id: (status, position) for job_id, status, position in rows}


async def run(*, crashes: int = 20, seed: int = 1, timeout_s: float = 1800) -> WorkerCrashResult:
    chance = random.Random(seed)
    root = workspace("drill-crash-worker-")
    cluster = Cluster(root, "data")
    result = WorkerCrashResult()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        cluster.init()
        cluster.start()
        url = await create_database(cluster.url, "drill")
        async with platform(url, root / "var", server_worker_concurrency=0) as site, client_of(site.app) as http:
            database = site.app.state.database
            workers = [start_worker(site, root / f"worker-{n}", chunk_rows=CHUNK_ROWS) for n in range(2)]
            started = 2
            deadline = time.monotonic() + timeout_s

            async def post_job() -> None:
                response = await http.post("/api/collection/jobs", content=_body(site, result.jobs),
                                           headers={**site.headers(), "content-type": "application/x-ndjson"})
                if response.status_code != 202:
                    raise AssertionError(f"job refused: {response.status_code} {response.text[:300]}")
                result.jobs += 1

            for _ in range(2):
                await post_job()
            while result.crashes < crashes:
                if time.monotonic() > deadline:
                    raise AssertionError(f"only {result.crashes} crashes in {timeout_s:.0f} s")
                positions = await _positions(database)
                inside = [job for job, (status, at) in positions.items()
                          if status == "running" and 0 < at < RECORDS_PER_JOB]
                if sum(1 for status, _ in positions.values() if status != "completed") < 2:
                    await post_job()  # keep work in the queue for both workers
                if not inside:
                    await asyncio.sleep(0.05)
                    continue
                await asyncio.sleep(chance.uniform(0.0, 0.3))
                victim = workers.pop(chance.randrange(len(workers)))
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                result.crashes += 1
                result.audit_failures += 0 if (await verify_chain(database)).problem is None else 1
                workers.append(start_worker(site, root / f"worker-{started}", chunk_rows=CHUNK_ROWS))
                started += 1
            while True:
                positions = await _positions(database)
                if all(status == "completed" for status, _ in positions.values()):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"jobs not completed: {positions}")
                await asyncio.sleep(0.2)
            result.completed = len(positions)
            result.expected = result.jobs * RECORDS_PER_JOB
            async with database.transaction() as session:
                result.stored = (await session.execute(select(func.count()).select_from(Record))).scalar_one()
                result.distinct = (await session.execute(
                    select(func.count(func.distinct(Record.record_id))))).scalar_one()
            result.counters_ok = (await recount(database)).ok
            result.audit_failures += 0 if (await verify_chain(database)).problem is None else 1
        return result
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run(crashes=int(sys.argv[1]) if len(sys.argv) > 1 else 20))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
