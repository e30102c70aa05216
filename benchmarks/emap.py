"""The medical e-map's `near` search over a province's worth of facilities: latency p50/p99 and CPU per query.

A scratch database migrated to head (SQLite in a temporary folder, or with --backend postgresql a database made
on the server of CITYHEALTH_DATABASE_URL and dropped afterwards) holds `--facilities` facilities spread over a
400 km square around Nanjing, denser towards the city (as hospitals and clinics are), each with three services and
weekday hours. Then, one query at a time, `booking.nearby.nearby` (the route's use case: the registry's search
and today's free slots from the pool) runs `--queries` times per radius from random centres in the square, a third
of them filtered by service and a third by open-now, 20 per page. Per radius it prints how many facilities were
within it on average, p50/p99 latency and the CPU per query of this process and (PostgreSQL) of the database's
backends. Last line: `emap_near_p99_ms=A emap_near_cpu_ms=B facilities=N backend=X` for the 5 km radius, a
resident's "near me".
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_race import percentile
from benchmarks.measure import database_cpu_s
from sqlalchemy import insert

from cityhealth.booking import nearby
from cityhealth.booking.availability import BookingRuntime
from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry.models import FACILITY_SERVICES, FacilityHours, FacilityProfile, FacilityService, Organization
from cityhealth.registry.service import NearQuery

NANJING = (32.06, 118.79)
HALF_SIDE_KM = 200.0
RADII_M = (1_000.0, 5_000.0, 20_000.0, 100_000.0)
HEADLINE_RADIUS_M = 5_000.0
NOW = datetime(2022, 6, 15, 10, 0, tzinfo=BUSINESS_TZ)  # a Wednesday morning


def _point(rng: random.Random) -> tuple[float, float]:
    """A point of the square, half of them within 30 km of the city centre."""
    spread_km = 30.0 if rng.random() < 0.5 else HALF_SIDE_KM
    north = max(-HALF_SIDE_KM, min(HALF_SIDE_KM, rng.gauss(0, spread_km / 2)))
    east = max(-HALF_SIDE_KM, min(HALF_SIDE_KM, rng.gauss(0, spread_km / 2)))
    return NANJING[0] + north / 111.2, NANJING[1] + east / (111.2 * math.cos(math.radians(NANJING[0])))


async def _seed(database: Database, facilities: int, rng: random.Random) -> None:
    now = NOW
    batch = 2_000
    async with database.transaction() as session:
        for first in range(0, facilities, batch):
            numbers = range(first, min(facilities, first + batch))
            await session.execute(insert(Organization), [
                {"id": n + 1, "code": f"BENCH{n:06d}", "name": f"基准机构{n:06d}", "kind": "hospital",
                 "active_from": date(2000, 1, 1), "address_line": f"测试路{n}号", "created_at": now, "updated_at": now}
                for n in numbers])
            points = [_point(rng) for _ in numbers]
            await session.execute(insert(FacilityProfile), [
                {"organization_id": n + 1, "latitude": lat, "longitude": lon, "phone": "025-80000000",
                 "created_at": now, "updated_at": now} for n, (lat, lon) in zip(numbers, points, strict=True)])
            await session.execute(insert(FacilityService), [
                {"organization_id": n + 1, "service": service} for n in numbers
                for service in rng.sample(FACILITY_SERVICES, 3)])
            await session.execute(insert(FacilityHours), [
                {"organization_id": n + 1, "weekday": day, "opens_min": 480, "closes_min": 1050 if n % 2 else 720}
                for n in numbers for day in range(1, 6)])


async def _measure(database: Database, clock: SimulatedClock, rng: random.Random, queries: int,
                   backend_cpu: Any) -> dict[float, tuple[float, float, float, float, float]]:
    runtime = BookingRuntime()
    results: dict[float, tuple[float, float, float, float, float]] = {}
    for radius in RADII_M:
        latencies: list[float] = []
        within = 0
        cpu_before, db_before = time.process_time(), await backend_cpu()
        for number in range(queries):
            lat, lon = _point(rng)
            query = NearQuery(latitude=lat, longitude=lon, radius_m=radius, limit=20,
                              service=rng.choice(FACILITY_SERVICES) if number % 3 == 1 else None,
                              open_now=number % 3 == 2)
            started = time.perf_counter()
            async with database.sessions() as session:
                page = await nearby.nearby(session, database, clock, runtime, None, query)
            latencies.append((time.perf_counter() - started) * 1000)
            within += page.total
        cpu_ms = (time.process_time() - cpu_before) * 1000 / queries
        db_ms = (await backend_cpu() - db_before) * 1000 / queries
        latencies.sort()
        results[radius] = (within / queries, percentile(latencies, 0.5), percentile(latencies, 0.99), cpu_ms, db_ms)
    return results


async def main(backend: str, facilities: int, queries: int) -> None:
    rng = random.Random(9)
    folder = Path(tempfile.mkdtemp(prefix="emap-"))
    server = os.environ.get("CITYHEALTH_DATABASE_URL") or os.environ.get(
        "CITYHEALTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ch_bench_emap_{uuid.uuid4().hex[:8]}"
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}" if backend == "sqlite" else await create_database(server, name)
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=folder / "var",
                        field_encryption_key=generate_key(), lookup_hmac_key=generate_key(),
                        token_signing_key=generate_key())
    database: Database | None = None
    try:
        await asyncio.to_thread(upgrade, settings)
        database = Database(settings.effective_database_url)
        await _seed(database, facilities, rng)

        async def backend_cpu() -> float:
            return 0.0 if backend == "sqlite" else await database_cpu_s(server, name)

        clock = SimulatedClock(NOW)
        await _measure(database, clock, rng, 20, backend_cpu)  # warm the caches and the prepared statements
        results = await _measure(database, clock, rng, queries, backend_cpu)
    finally:
        if database is not None:
            await database.dispose()
        if backend != "sqlite":
            await drop_database(server, name)
    print(f"{facilities} facilities, {queries} queries per radius, {backend}, {os.cpu_count()} cores")
    for radius, (within, p50, p99, cpu_ms, db_ms) in results.items():
        print(f"radius {radius / 1000:6.0f} km: {within:8.0f} within  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
              f"cpu {cpu_ms:6.1f} ms/query (database {db_ms:5.1f} ms)")
    _, _, p99, cpu_ms, db_ms = results[HEADLINE_RADIUS_M]
    print(f"emap_near_p99_ms={p99:.1f} emap_near_cpu_ms={cpu_ms + db_ms:.1f} facilities={facilities} "
          f"backend={backend}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--facilities", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.backend, arguments.facilities, arguments.queries))
