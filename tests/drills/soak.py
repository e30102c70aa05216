"""The soak drill (PostgreSQL, the drill's own cluster): a `cityhealth serve` process and a `cityhealth worker`
under mixed load for a set duration — real-time uploads, bulk uploads processed by the worker, reads of the
quality report (the bulletin's tables) and of jobs, readiness.

Measured: every process's resident memory, sampled every few seconds, from the end of the warm-up (the first
fifth) to the end (growth in %); each path's p99 latency in the first and the last quarter after the warm-up;
errors (any answer but 200/202); records lost (stored against acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from cityhealth.clock import business_date
from cityhealth.db.admin import create_database
from tests.drills.checks import settled
from tests.drills.cluster import Cluster, free_port, workspace
from tests.drills.crash_worker import _worker
from tests.drills.platform import FORM, Platform, platform, serve, wait_ready

BULK_RECORDS = 2_000
JOB_PATIENCE_S = 120  # how long after the load's end its last bulk job is followed before it counts as an error


@dataclass
class SoakResult:
    duration_s: float
    judge_latency: bool = True  # a short soak's quarters are seconds long: one stall decides their p99
    rss_mb: dict[str, tuple[float, float]] = field(default_factory=dict)  # process: (after warm-up, peak after)
    p99_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # path: (first quarter, last quarter)
    requests: int = 0
    errors: int = 0
    acknowledged: int = 0
    stored: int = 0
    counters_ok: bool = False
    audit_ok: bool = False

    @property
    def rss_growth_pct(self) -> float:
        return max((100 * (peak - start) / start for start, peak in self.rss_mb.values() if start), default=0.0)

    @property
    def p99_ratio(self) -> float:
        return max((last / first for first, last in self.p99_ms.values() if first), default=0.0)

    @property
    def lost(self) -> int:
        return max(0, self.acknowledged - self.stored)

    @property
    def ok(self) -> bool:
        return (not self.errors and not self.lost and self.stored == self.acknowledged and self.counters_ok
                and self.audit_ok and self.rss_growth_pct <= 10
                and (self.p99_ratio <= 1.5 or not self.judge_latency))

    def line(self) -> str:
        rss = " ".join(f"{name}={a:.0f}->{b:.0f}MB" for name, (a, b) in self.rss_mb.items())
        p99 = " ".join(f"{path}={a:.0f}->{b:.0f}ms" for path, (a, b) in self.p99_ms.items())
        judged = "" if self.judge_latency else " (not judged: short run)"
        return (f"soak: ok={int(self.ok)} duration_s={self.duration_s:.0f} requests={self.requests} "
                f"errors={self.errors} acknowledged={self.acknowledged} stored={self.stored} lost={self.lost} "
                f"counters_ok={int(self.counters_ok)} audit_ok={int(self.audit_ok)} "
                f"rss_growth_pct={self.rss_growth_pct:.1f} ({rss}) p99_ratio={self.p99_ratio:.2f}{judged} ({p99})")


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (a worker's prepare processes), in KiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        pids += [int(child) for child in children]
    return total


class Load:
    """The mixed load, until a moment: real-time uploaders, a bulk uploader that follows each job to its end, and
    a reader of the quality report and readiness. `tag` keeps the records of two loads on one platform apart."""

    def __init__(self, http: httpx.AsyncClient, site: Platform, until: float, tag: str = "") -> None:
        self.http, self.site, self.until, self.tag = http, site, until, tag
        self.latencies: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.requests = self.errors = self.acknowledged = 0

    async def timed(self, path: str, method: str, url: str, **kwargs: object) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await self.http.request(method, url, headers={**self.site.headers(),
                                                                     **kwargs.pop("headers", {})},  # type: ignore[dict-item]
                                               **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            self.requests += 1
            self.errors += 1
            return None
        self.latencies[path].append((started, time.monotonic() - started))
        self.requests += 1
        if response.status_code not in (200, 202):
            self.errors += 1
        return response

    async def realtime(self, number: int) -> None:
        n = 0
        while time.monotonic() < self.until:
            response = await self.timed("realtime", "POST", f"/api/collection/forms/{FORM}/records",
                                        json=self.site.batch(f"{self.tag}s{number}-{n}", 50))
            if response is not None and response.status_code == 200:
                self.acknowledged += 50
            n += 1
            await asyncio.sleep(0.05)

    async def bulk(self) -> None:
        n = 0
        while time.monotonic() < self.until:
            records = self.site.batch(f"{self.tag}b{n}", BULK_RECORDS)
            body = b"".join(orjson.dumps({"form": FORM, **r}) + b"\n" for r in records)
            response = await self.timed("bulk", "POST", "/api/collection/jobs", content=body,
                                        headers={"content-type": "application/x-ndjson"})
            n += 1
            if response is None or response.status_code != 202:
                continue
            job = response.json()["id"]
            while True:  # its reads are the job path's load
                read = await self.timed("job_read", "GET", f"/api/collection/jobs/{job}")
                if read is None or read.status_code != 200:  # counted as an error by timed()
                    break
                status = read.json()["status"]
                if status == "completed":
                    self.acknowledged += BULK_RECORDS
                    break
                if status == "failed" or time.monotonic() > self.until + JOB_PATIENCE_S:
                    self.errors += 1  # a job that failed or never ends is an error, though every answer was 200
                    break
                await asyncio.sleep(0.5)

    async def reads(self) -> None:
        month = business_date(self.site.app.state.clock.now()).strftime("%Y-%m")
        while time.monotonic() < self.until:
            await self.timed("quality", "GET", "/api/collection/quality", params={"month": month})
            await self.timed("readyz", "GET", "/readyz")
            await asyncio.sleep(0.5)

    def start(self, realtime_clients: int = 2) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self.realtime(n)) for n in range(realtime_clients)]
        return [*tasks, asyncio.create_task(self.bulk()), asyncio.create_task(self.reads())]


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


@contextlib.asynccontextmanager
async def served(site: Platform, root: Path) -> AsyncIterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    """`site`'s platform as processes, ready: a `cityhealth serve` and, on PostgreSQL, a `cityhealth worker` beside
    it (the server's own task worker off; on SQLite the server runs the tasks). Their base URL and the processes by
    name; on leaving, each is sent SIGTERM and killed if it has not ended within 30 s."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    port = free_port()
    try:
        if site.app.state.database.is_sqlite:
            processes["server"] = serve(site.settings, site.keys, port, root / "serve.log")
        else:
            processes["server"] = serve(site.settings, site.keys, port, root / "serve.log",
                                        CITYHEALTH_SERVER_WORKER_CONCURRENCY="0")
            processes["worker"] = _worker(site, root / "worker")
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(base_url)
        yield base_url, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def run(*, duration_s: float = 1200.0, judge_latency: bool = True) -> SoakResult:
    root = workspace("drill-soak-")
    cluster = Cluster(root, "data")
    result = SoakResult(duration_s, judge_latency)
    try:
        cluster.init()
        cluster.start()
        url = await create_database(cluster.url, "drill")
        async with platform(url, root / "var", server_worker_concurrency=0) as site:
            pass
        async with served(site, root) as (base_url, processes):
            started = time.monotonic()
            warm = started + duration_s / 5
            rss: dict[str, list[tuple[float, int]]] = defaultdict(list)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                load = Load(http, site, started + duration_s)
                tasks = load.start()
                while time.monotonic() < load.until:
                    for name, process in processes.items():
                        rss[name].append((time.monotonic(), _rss_kb(process.pid)))
                    await asyncio.sleep(min(5.0, duration_s / 40))
                await asyncio.gather(*tasks)
        for name, samples in rss.items():
            after = [kb for at, kb in samples if at >= warm]
            if after:
                result.rss_mb[name] = (after[0] / 1024, max(after) / 1024)
        quarter = (load.until - warm) / 4
        for path, timings in load.latencies.items():
            first = [s for at, s in timings if warm <= at < warm + quarter]
            last = [s for at, s in timings if at >= load.until - quarter]
            result.p99_ms[path] = (p99(first), p99(last))
        result.requests, result.errors, result.acknowledged = load.requests, load.errors, load.acknowledged
        result.stored, result.counters_ok, result.audit_ok = await settled(url)
        return result
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run(duration_s=float(sys.argv[1]) if len(sys.argv) > 1 else 1200.0))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
