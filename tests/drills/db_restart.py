"""The database-restart drill: the throwaway PostgreSQL cluster stopped and started, then killed (SIGKILL to every
server process) and started, under real-time uploads and reads.

Each uploader sends batches of new records and sends a batch again, unchanged, whenever it is answered 503
(which must carry Retry-After); one reader reads a bulk job that exists, another one that does not (an
authenticated 404, whose denial the audit writes as the response starts); a poller reads `/readyz` every 50 ms.
Every request has the answers it may get: an upload 200 or 503, the existing job 200 or 503 (a 404 would say a
failed lookup passed for "not found"), the missing one 404 or 503. Afterwards: no other answer (a 500, or an
error raised out of the app, which a server answers 500), readiness went 503 within 5 s of each outage and 200
within 5 s of the database's return, the same app (its pool, its task worker) served on — a bulk job sent after
the last outage completes —, every batch is stored exactly once, the counters equal a recount and `audit verify`
passes.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from cityhealth.db.admin import create_database
from tests.drills.checks import audit_verifies, recount
from tests.drills.cluster import Cluster, workspace
from tests.drills.platform import FORM, Platform, client_of, platform

UPLOADERS = 3
BATCH = 20
JOB_RECORDS = 20
READINESS_LIMIT_S = 5.0
JOB_LIMIT_S = 60.0  # for the bulk job sent after the last outage to complete (the server's worker restarts)
MISSING_JOB = 999_999
SHORT = {"outage_s": 2.0, "steady_s": 2.0}  # the size `benchmarks/drills.py --short` runs
# What each kind of request may be answered.
EXPECTED = {"upload": {200, 503}, "job": {200, 503}, "missing_job": {404, 503}}


@dataclass
class Outage:
    kind: str
    down_at: float
    up_at: float = 0.0
    not_ready_after_s: float | None = None
    ready_after_s: float | None = None


@dataclass
class RestartResult:
    ok: bool = False
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, int]] = field(default_factory=Counter)  # (request kind, status)
    raised: list[str] = field(default_factory=list)  # errors raised out of the app (the first few)
    missing_retry_after: int = 0
    jobs_completed: int = 0
    worker_ok: bool = False
    batches: int = 0
    stored: int = 0
    counters_ok: bool = False
    audit_ok: bool = False
    outages: list[Outage] = field(default_factory=list)

    def line(self) -> str:
        times = " ".join(f"{o.kind}:not_ready_s={o.not_ready_after_s} ready_s={o.ready_after_s}" for o in self.outages)
        wrong = " ".join(f"{kind}:{status}x{n}" for (kind, status), n in sorted(self.unexpected.items())) or "none"
        return (f"db_restart: ok={int(self.ok)} answers={dict(sorted(self.statuses.items()))} unexpected={wrong} "
                f"missing_retry_after={self.missing_retry_after} batches={self.batches} stored={self.stored} "
                f"jobs_completed={self.jobs_completed} worker_ok={int(self.worker_ok)} "
                f"counters_ok={int(self.counters_ok)} audit_ok={int(self.audit_ok)} {times}"
                + (f" raised: {'; '.join(self.raised)}" if self.raised else ""))

    def note(self, kind: str, status: int, response: httpx.Response | None) -> None:
        self.statuses[status] += 1
        if status not in EXPECTED[kind]:
            self.unexpected[(kind, status)] += 1
        if status == 503 and response is not None and "retry-after" not in response.headers:
            self.missing_retry_after += 1


async def _send(http: httpx.AsyncClient, result: RestartResult, kind: str, method: str, url: str,
                **options: Any) -> httpx.Response | None:
    """One request, its answer noted; None when the app raised (through the ASGI client: a server answers that 500,
    and the drill's client goes on as a server's would)."""
    try:
        response = await http.request(method, url, **options)
    except httpx.TransportError:
        raise  # the client's own failure, not an answer: the caller counts it
    except Exception as error:
        result.note(kind, 500, None)
        if len(result.raised) < 3:
            result.raised.append(f"{kind}: {type(error).__name__}: {str(error)[:120]}")
        return None
    result.note(kind, response.status_code, response)
    return response


async def _uploader(http: httpx.AsyncClient, site: Platform, number: int, stop: asyncio.Event,
                    result: RestartResult) -> None:
    batch_no = 0
    while not stop.is_set():
        records = site.batch(f"u{number}-{batch_no}", BATCH)
        while True:  # the same batch until it is taken
            try:
                response = await _send(http, result, "upload", "POST", f"/api/collection/forms/{FORM}/records",
                                       json=records, headers=site.headers())
            except httpx.TransportError:
                result.statuses[-1] += 1
                await asyncio.sleep(0.2)
                continue
            if response is not None and response.status_code == 200:
                break
            await asyncio.sleep(0.2 if response is not None and response.status_code == 503 else 1.0)
        result.batches += 1
        batch_no += 1


async def _reader(http: httpx.AsyncClient, site: Platform, kind: str, job_id: int, stop: asyncio.Event,
                  result: RestartResult) -> None:
    while not stop.is_set():
        await _send(http, result, kind, "GET", f"/api/collection/jobs/{job_id}", headers=site.headers())
        await asyncio.sleep(0.1)


async def _send_job(http: httpx.AsyncClient, site: Platform, name: str) -> int:
    body = b"".join(orjson.dumps({"form": FORM, **record}) + b"\n" for record in site.batch(name, JOB_RECORDS))
    response = await http.post("/api/collection/jobs", content=body,
                               headers={**site.headers(), "content-type": "application/x-ndjson"})
    if response.status_code != 202:
        raise AssertionError(f"bulk job refused: {response.status_code} {response.text[:300]}")
    return int(response.json()["id"])


async def _completed(http: httpx.AsyncClient, site: Platform, job_ids: list[int], limit_s: float) -> int:
    """How many of the jobs completed within `limit_s` (asked again after a 503: the database may still return)."""
    deadline = time.monotonic() + limit_s
    done: set[int] = set()
    while time.monotonic() < deadline and len(done) < len(job_ids):
        for job_id in set(job_ids) - done:
            response = await http.get(f"/api/collection/jobs/{job_id}", headers=site.headers())
            if response.status_code == 200 and response.json()["status"] == "completed":
                done.add(job_id)
        await asyncio.sleep(0.2)
    return len(done)


async def _readiness(http: httpx.AsyncClient, stop: asyncio.Event, samples: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        try:
            status = (await http.get("/readyz")).status_code
        except httpx.TransportError:
            status = -1
        samples.append((time.monotonic(), status))
        await asyncio.sleep(0.05)


def _first(samples: list[tuple[float, int]], after: float, status: int) -> float | None:
    return next((round(at - after, 2) for at, code in samples if at >= after and code == status), None)


async def run(*, outage_s: float = 4.0, steady_s: float = 4.0) -> RestartResult:
    root = workspace("drill-restart-")
    cluster = Cluster(root, "data")
    result = RestartResult()
    try:
        cluster.init()
        cluster.start()
        url = await create_database(cluster.url, "drill")
        var = root / "var"
        async with platform(url, var) as site, client_of(site.app) as http:
            first_job = await _send_job(http, site, "job-before")
            stop = asyncio.Event()
            samples: list[tuple[float, int]] = []
            tasks = [asyncio.create_task(_uploader(http, site, n, stop, result)) for n in range(UPLOADERS)]
            tasks += [asyncio.create_task(_reader(http, site, "job", first_job, stop, result)),
                      asyncio.create_task(_reader(http, site, "missing_job", MISSING_JOB, stop, result)),
                      asyncio.create_task(_readiness(http, stop, samples))]
            try:
                for kind in ("stop", "kill"):
                    await asyncio.sleep(steady_s)
                    outage = Outage(kind, time.monotonic())
                    await asyncio.to_thread(cluster.stop if kind == "stop" else cluster.kill)
                    await asyncio.sleep(outage_s)
                    await asyncio.to_thread(cluster.start)
                    outage.up_at = time.monotonic()
                    result.outages.append(outage)
                await asyncio.sleep(steady_s)
            finally:
                stop.set()
                ended = await asyncio.gather(*tasks, return_exceptions=True)
            failed = [error for error in ended if isinstance(error, BaseException)]
            if failed:  # a load task that died would have stopped testing quietly
                raise AssertionError(f"a load task ended on {failed[0]!r}") from failed[0]
            # The same process's task worker takes work sent after the outages.
            last_job = await _send_job(http, site, "job-after")
            result.jobs_completed = await _completed(http, site, [first_job, last_job], JOB_LIMIT_S)
            result.worker_ok = result.jobs_completed == 2
            for outage in result.outages:
                outage.not_ready_after_s = _first(samples, outage.down_at, 503)
                outage.ready_after_s = _first(samples, outage.up_at, 200)
            counts = await recount(site.app.state.database)
            result.stored, result.counters_ok = counts.records, counts.ok
        result.audit_ok, _ = audit_verifies(url)
        timely = all(o.not_ready_after_s is not None and o.not_ready_after_s <= READINESS_LIMIT_S
                     and o.ready_after_s is not None and o.ready_after_s <= READINESS_LIMIT_S for o in result.outages)
        expected_stored = result.batches * BATCH + result.jobs_completed * JOB_RECORDS
        result.ok = (timely and not result.unexpected and not result.statuses[-1] and not result.missing_retry_after
                     and result.worker_ok and result.counters_ok and result.audit_ok
                     and result.stored == expected_stored and result.batches > 0)
        return result
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    # Alone: `python -m tests.drills.db_restart [--short]`.
    outcome = asyncio.run(run(**SHORT) if "--short" in sys.argv[1:] else run())
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
