"""Telemed statistics benchmark: the bulletin's telemed month for a city, on a city-sized network.

A scratch SQLite database migrated to head holds the Nanjing-sized networks — 600 memberships over the five
networks, 12 areas — and `--rows` month-volume rows (organizations × networks × months). The cost of
`telemed.statistics.month_statistics` depends on those rows and the members, never on the month's cases,
messages or images, which is what this shows: it is run `--runs` times and its CPU per run reported.
Last line: `telemed_statistics_cpu_ms=X rows=N members=M`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry import service as registry
from cityhealth.registry.schemas import AreaCreate, OrganizationCreate
from cityhealth.telemed import repository, service, statistics
from cityhealth.telemed.schemas import MemberJoin

DISTRICTS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116", "320117",
             "320118"]
NETWORKS = ("teleconsultation", "ecg", "lab", "imaging", "pathology")
KINDS = ("tertiary", "secondary_or_above", "community_health_centre", "other")


async def _prepare(database: Database, clock: SimulatedClock, organizations: int, months: int) -> tuple[int, int]:
    async with database.transaction() as session:
        await registry.insert_area(session, clock, AreaCreate(code="320000", name="江苏省", level="province"))
        await registry.insert_area(session, clock, AreaCreate(code="320100", name="南京市", level="city",
                                                               parent_code="320000"))
        for code in DISTRICTS:
            await registry.insert_area(session, clock, AreaCreate(code=code, name=f"区{code}", level="district",
                                                                   parent_code="320100"))
        ids = []
        for n in range(organizations):
            created = await registry.insert_organization(session, clock, OrganizationCreate.model_validate({
                "name": f"基准医院{n}", "kind": "hospital", "area_code": DISTRICTS[n % len(DISTRICTS)],
            }))
            ids.append(created.id)
    members = rows = 0
    async with database.transaction() as session:
        for n, organization_id in enumerate(ids):
            for network in NETWORKS[: 1 + n % len(NETWORKS)]:
                await service.join(session, clock, None, network, MemberJoin.model_validate({
                    "organization_id": organization_id, "kind": KINDS[n % len(KINDS)], "role": "requester",
                    "joined_on": date(2021, 1, 1)}), operator="bench")
                members += 1
                for month in range(1, months + 1):
                    await repository.add_volume(session, network, date(2022, month, 1), organization_id,
                                                cases_submitted=n + month, reports_uploaded=n, images=1000 * n,
                                                consultations=n % 3, specimens_routed=n % 7)
                    rows += 1
    return members, rows


async def main(organizations: int, months: int, runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="telemed-statistics-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=folder / "var",
                        field_encryption_key=generate_key(), lookup_hmac_key=generate_key(),
                        token_signing_key=generate_key())
    await asyncio.to_thread(upgrade, settings)
    database = Database(url)
    clock = SimulatedClock(datetime(2022, 7, 1, 9, 0, tzinfo=BUSINESS_TZ))
    try:
        members, rows = await _prepare(database, clock, organizations, months)
        async with database.transaction() as session:
            await statistics.month_statistics(session, "2022-06", "320100")  # warm
            started = time.process_time()
            for _ in range(runs):
                found = await statistics.month_statistics(session, "2022-06", "320100")
            cpu_ms = (time.process_time() - started) * 1000 / runs
    finally:
        await database.dispose()
    print(f"ecg cases {found.ecg.cases_month}, members {found.ecg.members}, top {found.ecg.top_uploaders[0]}")
    print(f"telemed_statistics_cpu_ms={cpu_ms:.1f} rows={rows} members={members}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.organizations, arguments.months, arguments.runs))
