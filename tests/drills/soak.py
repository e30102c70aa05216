"""The soak drill (PostgreSQL, the drill's own cluster): a `cityhealth serve` process and a `cityhealth worker`
under mixed load for a set duration — real-time uploads, bulk uploads processed by the worker, residents booking
and cancelling through an app, availability searches, reads of the quality report and of jobs, readiness, and
the pages staff read signed in through the login form: the bulletin as its editor previews the month, the
data-quality dashboard and a hospital's rejected records as an operator sees them.

Measured: every process's resident memory, sampled every few seconds, from the end of the warm-up (the first
fifth) to the end (growth in %); each path's p99 latency in the first and the last quarter after the warm-up;
errors (a broken connection, or any answer but the request's own success: 201 for a booking, 202 for a bulk
upload, 200 for the rest; a bulk job that fails or never ends); records lost (stored against acknowledged);
bookings (active in the database against those answered 201 less those cancelled, none beyond a session's slots,
each session's counter of slots taken equal to its active bookings). The slow-disk drill runs the same load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from cityhealth.clock import business_date
from cityhealth.db.admin import create_database
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role
from tests.drills.checks import seats, settled
from tests.drills.cluster import Cluster, workspace
from tests.drills.platform import (
    FORM,
    BookingGround,
    Platform,
    booking_ground,
    client_of,
    platform,
    served,
)
from tests.factories.collection import add_organization
from tests.factories.security import admin_headers
from tests.factories.sign_in import log_in, staff_account

BULK_RECORDS = 2_000
JOB_PATIENCE_S = 120  # how long after the load's end its last bulk job is followed before it counts as an error
BOOKERS = 2  # residents booking through the app at the same time
HELD = 4  # bookings a booker keeps: it cancels its oldest before booking again, so at most BOOKERS * HELD
CAPACITY = 20  # are active and the session never fills (a 409 "sold out" would be a defect of the drill)
PAGE_EVERY_S = 5.0  # the bulletin and the dashboard are computed from the month's data: heavy, read at a pace


@dataclass
class SoakResult:
    duration_s: float
    judge_latency: bool = True  # a short soak's quarters are seconds long: one stall decides their p99
    rss_mb: dict[str, tuple[float, float]] = field(default_factory=dict)  # process: (after warm-up, peak after)
    # process (and PostgreSQL's): CPU ms per request answered after the warm-up, the whole mix's average
    cpu_ms: dict[str, float] = field(default_factory=dict)
    p99_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # path: (first quarter, last quarter)
    requests: int = 0
    errors: int = 0
    acknowledged: int = 0
    stored: int = 0
    booked: int = 0  # bookings answered 201
    cancelled: int = 0  # cancellations answered 200
    active: int = 0  # active bookings in the database afterwards
    oversold: int = 0
    miscounted: int = 0
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
    def bookings_ok(self) -> bool:
        return (self.booked > 0 and self.active == self.booked - self.cancelled and not self.oversold
                and not self.miscounted)

    @property
    def ok(self) -> bool:
        return (not self.errors and not self.lost and self.stored == self.acknowledged and self.counters_ok
                and self.bookings_ok and self.audit_ok and self.rss_growth_pct <= 10
                and (self.p99_ratio <= 1.5 or not self.judge_latency))

    def line(self) -> str:
        rss = " ".join(f"{name}={a:.0f}->{b:.0f}MB" for name, (a, b) in self.rss_mb.items())
        p99 = " ".join(f"{path}={a:.0f}->{b:.0f}ms" for path, (a, b) in self.p99_ms.items())
        cpu = " ".join(f"{name}={ms:.1f}" for name, ms in self.cpu_ms.items())
        judged = "" if self.judge_latency else " (not judged: short run)"
        return (f"soak: ok={int(self.ok)} duration_s={self.duration_s:.0f} requests={self.requests} "
                f"errors={self.errors} acknowledged={self.acknowledged} stored={self.stored} lost={self.lost} "
                f"booked={self.booked} cancelled={self.cancelled} active={self.active} oversold={self.oversold} "
                f"miscounted={self.miscounted} counters_ok={int(self.counters_ok)} audit_ok={int(self.audit_ok)} "
                f"rss_growth_pct={self.rss_growth_pct:.1f} ({rss}) p99_ratio={self.p99_ratio:.2f}{judged} ({p99}) "
                f"cpu_ms_per_request ({cpu})")


def _tree(pid: int) -> list[int]:
    """A process and its descendants (a worker's prepare processes, PostgreSQL's backends) still alive."""
    found, pids = [], [pid]
    while pids:
        current = pids.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        found.append(current)
        pids += [int(child) for child in children]
    return found


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    for current in _tree(pid):
        with contextlib.suppress(FileNotFoundError):
            status = Path(f"/proc/{current}/status").read_text()
            total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process and its children have used, those it has waited for included.
    PostgreSQL's ended backends are counted by the postmaster's waited-for children's times."""
    total = 0
    for current in _tree(pid):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[n]) for n in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return total * _TICK_S


class Load:
    """The mixed load, until a moment: real-time uploaders, a bulk uploader that follows each job to its end, a
    reader of the quality report and readiness (`start`), and the soak's bookers and signed-in page readers.
    `tag` keeps the records of two loads on one platform apart."""

    def __init__(self, http: httpx.AsyncClient, site: Platform, until: float, tag: str = "") -> None:
        self.http, self.site, self.until, self.tag = http, site, until, tag
        # The month of the uploads' records (an hour old), whose report, bulletin and dashboard are read.
        self.month = business_date(site.app.state.clock.now() - timedelta(hours=1)).strftime("%Y-%m")
        self.latencies: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.requests = self.errors = self.acknowledged = self.booked = self.cancelled = 0

    async def timed(self, path: str, method: str, url: str, *, expect: int = 200, http: httpx.AsyncClient | None = None,
                    headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response | None:
        """One request of `path`, as the upload client unless `headers` (or a signed-in `http`) say otherwise;
        an error when the connection breaks or the answer is not `expect`."""
        started = time.monotonic()
        self.requests += 1
        try:
            response = await (http or self.http).request(
                method, url, headers=self.site.headers() if headers is None else headers, **kwargs)
        except httpx.TransportError:
            self.errors += 1
            return None
        self.latencies[path].append((started, time.monotonic() - started))
        if response.status_code != expect:
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
            response = await self.timed("bulk", "POST", "/api/collection/jobs", expect=202, content=body,
                                        headers={**self.site.headers(), "content-type": "application/x-ndjson"})
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
        while time.monotonic() < self.until:
            await self.timed("quality", "GET", "/api/collection/quality", params={"month": self.month})
            await self.timed("readyz", "GET", "/readyz")
            await asyncio.sleep(0.5)

    def start(self, realtime_clients: int = 2) -> list[asyncio.Task[None]]:
        """The uploads and the reads every drill's load has (the soak adds its bookers and page readers)."""
        tasks = [asyncio.create_task(self.realtime(n)) for n in range(realtime_clients)]
        return [*tasks, asyncio.create_task(self.bulk()), asyncio.create_task(self.reads())]

    async def bookings(self, ground: BookingGround, residents: list[str]) -> None:
        """A booker: its HELD + 1 residents booked in turn through the app, each with a key of its own, the
        oldest booking cancelled first once HELD are active (so none of them is ever booked twice at once),
        and the department's availability searched between."""
        app, held, n = ground.app, deque[int](), 0
        while time.monotonic() < self.until:
            if len(held) == HELD:
                cancelled = await self.timed("cancel", "POST", f"/api/booking/bookings/{held.popleft()}/cancel",
                                             headers=app.headers())
                if cancelled is not None and cancelled.status_code == 200:
                    self.cancelled += 1
            resident = residents[n % len(residents)]
            booked = await self.timed("booking", "POST", "/api/booking/bookings", expect=201,
                                      json={"session_id": ground.session_id, "id_number": resident},
                                      headers={**app.headers(), "Idempotency-Key": uuid.uuid4().hex})
            if booked is not None and booked.status_code == 201:
                self.booked += 1
                held.append(booked.json()["id"])
            n += 1
            await self.timed("availability", "GET", "/api/booking/sessions", headers=app.headers(),
                             params={"department_id": ground.department_id})
            await asyncio.sleep(0.5)

    async def pages(self, http: httpx.AsyncClient, *paths: tuple[str, str]) -> None:
        """Pages read by a member of staff signed in on `http` (its cookies), every PAGE_EVERY_S, the first
        PAGE_EVERY_S after the start (the month has figures by then)."""
        while time.monotonic() + PAGE_EVERY_S < self.until:
            await asyncio.sleep(PAGE_EVERY_S)
            for path, url in paths:
                await self.timed(path, "GET", url, http=http, headers={})


async def _reported(site: Platform) -> None:
    """What the month's pages report on: the hospital enrolled for outpatient monitoring (the dashboard rates
    and charts it) and its district's health platform registered (the bulletin reports by district)."""
    await add_organization(site.app.state.database, site.app.state.clock, "P0001", kind="district_platform",
                           name="drill district platform")
    async with client_of(site.app) as local:
        enrolled = await local.post("/api/collection/enrolments", headers=await admin_headers(site.app), json={
            "organization_code": site.org_code, "group": "outpatient", "start_date": "2020-01-01"})
    if enrolled.status_code != 201:
        raise AssertionError(f"the hospital not enrolled: {enrolled.text}")


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


async def run(*, duration_s: float = 1200.0, judge_latency: bool = True) -> SoakResult:
    root = workspace("drill-soak-")
    cluster = Cluster(root, "data")
    result = SoakResult(duration_s, judge_latency)
    try:
        cluster.init()
        cluster.start()
        url = await create_database(cluster.url, "drill")
        async with platform(url, root / "var", server_worker_concurrency=0) as site:
            await _reported(site)
            ground = await booking_ground(site, residents=BOOKERS * (HELD + 1), capacity=CAPACITY)
            database, clock = site.app.state.database, site.app.state.clock
            editor = await staff_account(site.app, database, clock, Role.BULLETIN_EDITOR, "editor")
            operator = await staff_account(site.app, database, clock, Role.DATA_QUALITY_OPERATOR, "operator")
        rss: dict[str, list[tuple[float, int]]] = defaultdict(list)
        async with (served(site, root) as (base_url, processes),
                    httpx.AsyncClient(base_url=base_url, timeout=60) as http,
                    httpx.AsyncClient(base_url=base_url, timeout=60) as editing,
                    httpx.AsyncClient(base_url=base_url, timeout=60) as operating):
            for browser, account in ((editing, editor), (operating, operator)):  # the form, over HTTP
                if (signed := await log_in(browser, account, clock)).status_code != 303:
                    raise AssertionError(f"{account.username} not signed in: {signed.status_code}")
            started = time.monotonic()
            warm = started + duration_s / 5
            load = Load(http, site, started + duration_s)
            numbers = [number for _, number in ground.residents]
            tasks = load.start()
            tasks += [asyncio.create_task(load.bookings(ground, numbers[n::BOOKERS])) for n in range(BOOKERS)]
            tasks += [asyncio.create_task(load.pages(editing, ("bulletin", f"/bulletin/{load.month}"))),
                      asyncio.create_task(load.pages(
                          operating, ("dashboard", f"/dashboard/quality?month={load.month}"),
                          ("rejections", f"/dashboard/quality/units/{site.organization_id}/rejections"
                                         f"?month={load.month}")))]
            measured = {**{name: process.pid for name, process in processes.items()}, "postgres": cluster.pid()}
            cpu_at_warm: dict[str, float] = {}
            while time.monotonic() < load.until:
                for name, process in processes.items():
                    rss[name].append((time.monotonic(), _rss_kb(process.pid)))
                if not cpu_at_warm and time.monotonic() >= warm:
                    cpu_at_warm = {name: _cpu_s(pid) for name, pid in measured.items()}
                await asyncio.sleep(min(5.0, duration_s / 40))
            cpu_used = {name: _cpu_s(pid) - cpu_at_warm.get(name, 0.0) for name, pid in measured.items()}
            await asyncio.gather(*tasks)
        answered = sum(1 for timings in load.latencies.values() for at, _ in timings if at >= warm)
        result.cpu_ms = {name: 1000 * used / max(1, answered) for name, used in cpu_used.items()}
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
        result.booked, result.cancelled = load.booked, load.cancelled
        result.stored, result.counters_ok, result.audit_ok = await settled(url)
        checker = Database(url)
        try:
            slots = await seats(checker)
        finally:
            await checker.dispose()
        result.active, result.oversold, result.miscounted = slots.active, slots.oversold, slots.miscounted
        return result
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run(duration_s=float(sys.argv[1]) if len(sys.argv) > 1 else 1200.0))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
