"""The database-restart drill: the throwaway PostgreSQL cluster stopped and started, then killed (SIGKILL to every
server process) and started, under real-time uploads and reads.

Each uploader sends batches of new records and sends a batch again, unchanged, whenever it is answered 503
(which must carry Retry-After); a poller reads `/readyz` every 50 ms. Afterwards: no 500 was answered, readiness
went 503 within 5 s of each outage and 200 within 5 s of the database's return, the same app (its pool) served
on, every batch is stored exactly once, the counters equal a recount and `audit verify` passes.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from cityhealth.db.admin import create_database
from tests.drills.checks import audit_verifies, recount
from tests.drills.cluster import Cluster, workspace
from tests.drills.platform import FORM, Platform, client_of, platform

UPLOADERS = 3
BATCH = 20
READINESS_LIMIT_S = 5.0


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
    missing_retry_after: int = 0
    batches: int = 0
    stored: int = 0
    counters_ok: bool = False
    audit_ok: bool = False
    outages: list[Outage] = field(default_factory=list)

    def line(self) -> str:
        times = " ".join(f"{o.kind}:not_ready_s={o.not_ready_after_s} ready_s={o.ready_after_s}" for o in self.outages)
        return (f"db_restart: ok={int(self.ok)} answers={dict(sorted(self.statuses.items()))} "
                f"missing_retry_after={self.missing_retry_after} batches={self.batches} stored={self.stored} "
                f"counters_ok={int(self.counters_ok)} audit_ok={int(self.audit_ok)} {times}")


async def _uploader(http: httpx.AsyncClient, site: Platform, number: int, stop: asyncio.Event,
                    result: RestartResult) -> None:
    batch_no = 0
    while not stop.is_set():
        records = site.batch(f"u{number}-{batch_no}", BATCH)
        while True:  # the same batch until it is taken
            try:
                response = await http.post(f"/api/collection/forms/{FORM}/records", json=records,
                                           headers=site.headers())
            except httpx.TransportError:
                result.statuses[-1] += 1
                await asyncio.sleep(0.2)
                continue
            result.statuses[response.status_code] += 1
            if response.status_code == 200:
                break
            if response.status_code == 503 and "retry-after" not in response.headers:
                result.missing_retry_after += 1
            await asyncio.sleep(0.2 if response.status_code == 503 else 1.0)
        result.batches += 1
        batch_no += 1


async def _reader(http: httpx.AsyncClient, site: Platform, stop: asyncio.Event, result: RestartResult) -> None:
    while not stop.is_set():
        response = await http.get("/api/collection/jobs/1", headers=site.headers())  # a read of the database
        result.statuses[response.status_code] += 1
        if response.status_code == 503 and "retry-after" not in response.headers:
            result.missing_retry_after += 1
        await asyncio.sleep(0.1)


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
            stop = asyncio.Event()
            samples: list[tuple[float, int]] = []
            tasks = [asyncio.create_task(_uploader(http, site, n, stop, result)) for n in range(UPLOADERS)]
            tasks += [asyncio.create_task(_reader(http, site, stop, result)),
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
                await asyncio.gather(*tasks, return_exceptions=True)
            for outage in result.outages:
                outage.not_ready_after_s = _first(samples, outage.down_at, 503)
                outage.ready_after_s = _first(samples, outage.up_at, 200)
            counts = await recount(site.app.state.database)
            result.stored, result.counters_ok = counts.records, counts.ok
        result.audit_ok, _ = audit_verifies(url)
        timely = all(o.not_ready_after_s is not None and o.not_ready_after_s <= READINESS_LIMIT_S
                     and o.ready_after_s is not None and o.ready_after_s <= READINESS_LIMIT_S for o in result.outages)
        answered_well = set(result.statuses) <= {200, 404, 503}  # 404: the job read names no job (a read all the same)
        result.ok = (timely and answered_well and not result.missing_retry_after and result.counters_ok
                     and result.audit_ok and result.stored == result.batches * BATCH and result.batches > 0)
        return result
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run())
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
