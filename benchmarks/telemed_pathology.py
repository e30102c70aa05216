"""Telemed benchmark, pathology part: the bulletin's cumulative pathology figures (`pathology_totals`) over a
network far larger than a city's, with many more cases of the other networks beside it.

A scratch database (PostgreSQL when CITYHEALTH_DATABASE_URL names a server, made there and dropped afterwards;
else SQLite in a temporary directory), migrated, then filled directly (bulk inserts, not the API: the figure
measured is the read): `--members` pathology members (a fifth in another city, a tenth having left),
`--people` experts and doctors (a tenth deactivated), `--cases` pathology cases over four years with a
report signed on half of them, `--other-cases` ECG cases, `--meetings` meetings and `--lectures` lectures
(most held, some cancelled). Then `--calls` calls of `pathology_totals` at moments spread over those years,
each in its own session as the bulletin's would be. Printed: ms per call (p50, p99), this process's CPU per
call and, on PostgreSQL, the database backends' CPU per call (from /proc).

Goal: a few milliseconds per call at this size (the bulletin asks once per issue); the figures must not
depend on the other networks' volume.
Last line: `pathology_totals_p50_ms=X pathology_totals_p99_ms=Y`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import database_cpu_s
from sqlalchemy import Table, insert, text
from tests.factories.registry import SMALL_AREA_TREE, organization_payload

from cityhealth.clock import BUSINESS_TZ, SimulatedClock, business_date
from cityhealth.config import Environment, Settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry import service as registry_service
from cityhealth.registry.schemas import AreaCreate
from cityhealth.telemed.models import Case, Member, Report
from cityhealth.telemed.pathology_models import PathologyLecture, PathologyMeeting, PathologyPerson
from cityhealth.telemed.pathology_statistics import pathology_totals

START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=4 * 365)
CHUNK = 5_000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _moment(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))


async def _insert(database: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with database.transaction() as session:
            await session.execute(insert(_table(model)), rows[start : start + CHUNK])


async def _organizations(database: Database, clock: SimulatedClock, count: int) -> list[int]:
    async with database.transaction() as session:
        for area in [*SMALL_AREA_TREE, AreaCreate(code="340000", name="安徽省", level="province"),
                     AreaCreate(code="340500", name="马鞍山市", level="city", parent_code="340000")]:
            await registry_service.insert_area(session, clock, area)
        return [
            (await registry_service.insert_organization(session, clock, organization_payload(area_code="320102"))).id
            for _ in range(count)
        ]


async def fill(database: Database, clock: SimulatedClock, args: argparse.Namespace) -> None:
    rng = random.Random(16)
    organizations = await _organizations(database, clock, args.members)
    members = []
    for n, organization_id in enumerate(organizations):
        joined = business_date(_moment(rng) - SPAN / 2)
        members.append({
            "network_code": "pathology", "organization_id": organization_id,
            "city_code": "340500" if n % 5 == 4 else "320100", "area_code": None if n % 5 == 4 else "320102",
            "kind": "tertiary", "role": ("requester", "reading_centre", "both")[n % 3],
            "reads_case_types": None, "reads_modalities": None, "joined_on": joined,
            "left_on": joined + timedelta(days=700) if n % 10 == 3 else None,
            "created_at": START, "created_by": "benchmark",
        })
    await _insert(database, Member, members)
    async with database.sessions() as session:
        statement = text("SELECT id, organization_id FROM telemed_members ORDER BY id")
        member_rows = [(int(row[0]), int(row[1])) for row in await session.execute(statement)]
    people = []
    for n in range(args.people):
        member_id, organization_id = member_rows[n % len(member_rows)]
        registered = _moment(rng)
        people.append({
            "organization_id": organization_id, "member_id": member_id, "key": f"S{n}",
            "kind": "expert" if n % 3 else "doctor", "name": f"医生{n}", "title": None, "specialty": None,
            "fingerprint": "0" * 64, "registered_at": registered, "registered_by": "benchmark",
            "deactivated_at": registered + timedelta(days=300) if n % 10 == 0 else None,
            "deactivated_by": None, "deactivation_reason": None,
        })
    await _insert(database, PathologyPerson, people)
    for network, count in (("pathology", args.cases), ("ecg", args.other_cases)):
        cases = []
        for n in range(count):
            member_id, organization_id = member_rows[n % len(member_rows)]
            submitted = _moment(rng)
            cases.append({
                "network_code": network, "external_id": f"{network}-{n}", "fingerprint": "0" * 64,
                "case_type": "pathology_case" if network == "pathology" else "ecg", "modality": None,
                "priority": "routine", "requester_member_id": member_id, "requester_organization_id": organization_id,
                "centre_member_id": None, "centre_organization_id": None, "resident_id": None,
                "clinical_question": None, "status": "completed", "business_status": "report-returned",
                "holder": None, "submitted_at": submitted, "due_at": submitted + timedelta(days=5),
                "updated_at": submitted, "completed_at": submitted + timedelta(days=2), "submitted_by": "benchmark",
            })
        await _insert(database, Case, cases)
    async with database.sessions() as session:
        pathology = [row[0] for row in await session.execute(
            text("SELECT id FROM telemed_cases WHERE network_code = 'pathology' AND id % 2 = 0"))]
    await _insert(database, Report, [
        {"case_id": case_id, "centre_member_id": member_rows[0][0], "author": "benchmark", "findings": "-",
         "conclusion": "-", "written_at": START, "signed_at": _moment(rng), "signed_by": "benchmark"}
        for case_id in pathology
    ])
    for model, count in ((PathologyMeeting, args.meetings), (PathologyLecture, args.lectures)):
        rows = []
        for n in range(count):
            member_id, organization_id = member_rows[n % len(member_rows)]
            starts = _moment(rng)
            held = n % 5 != 0
            row = {
                "organizer_member_id": member_id, "organizer_organization_id": organization_id,
                "city_code": "340500" if n % 5 == 4 else "320100", "request_key": f"k{n}", "fingerprint": "0" * 64,
                "title": "讨论", "starts_at": starts, "ends_at": starts + timedelta(hours=1),
                "status": "held" if held else "cancelled", "step_key": "s", "held_at": starts if held else None,
                "cancelled_at": None if held else starts, "cancel_reason": None, "created_at": starts,
                "created_by": "benchmark",
            }
            if model is PathologyLecture:
                row |= {"speaker_id": 1, "attendance": 50 if held else None}
            else:
                row |= {"minutes": "-" if held else None}
            rows.append(row)
        await _insert(database, model, rows)
    if database.engine.dialect.name == "postgresql":
        async with database.transaction() as session:
            await session.execute(text("ANALYZE"))


async def measure(database: Database, calls: int, server: str | None, name: str | None) -> tuple[float, float]:
    rng = random.Random(7)
    moments = [_moment(rng) for _ in range(calls)]
    timings = []
    db_cpu = await database_cpu_s(server, name) if server and name else 0.0
    cpu = time.process_time()
    for until in moments:
        started = time.perf_counter()
        async with database.sessions() as session:
            await pathology_totals(session, "320100", until)
        timings.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / calls
    db_ms = ((await database_cpu_s(server, name)) - db_cpu) * 1000 / calls if server and name else float("nan")
    async with database.sessions() as session:
        last = await pathology_totals(session, "320100", START + SPAN)
    timings.sort()
    p50, p99 = statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"{calls} calls: p50 {p50:.2f} ms, p99 {p99:.2f} ms; CPU per call {cpu_ms:.2f} ms (this process), "
          f"{db_ms:.2f} ms (database backends); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"figures at the end: {last}")
    return p50, p99


async def run(url: str, args: argparse.Namespace, server: str | None, name: str | None) -> tuple[float, float]:
    await asyncio.to_thread(upgrade, Settings(env=Environment.TEST, database_url=url))  # alembic runs its own loop
    database = Database(url)
    clock = SimulatedClock(datetime(2022, 6, 15, 9, 30, tzinfo=BUSINESS_TZ))
    try:
        started = time.perf_counter()
        await fill(database, clock, args)
        print(f"filled in {time.perf_counter() - started:.1f} s ({database.engine.dialect.name})", flush=True)
        return await measure(database, args.calls, server, name)
    finally:
        await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--other-cases", type=int, default=300_000)
    parser.add_argument("--meetings", type=int, default=5_000)
    parser.add_argument("--lectures", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if base.startswith("postgresql"):
        name = f"ch_bench_pathology_{uuid.uuid4().hex[:8]}"
        url = await create_database(base, name)
        try:
            p50, p99 = await run(url, args, base, name)
        finally:
            await drop_database(base, name)
    else:
        with tempfile.TemporaryDirectory() as directory:
            p50, p99 = await run(f"sqlite:///{Path(directory) / 'bench.sqlite'}", args, None, None)
    print(f"pathology_totals_p50_ms={p50:.2f} pathology_totals_p99_ms={p99:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
