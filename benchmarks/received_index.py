"""What the received-order index of the stored records costs the ingest path, on PostgreSQL.

The records room's linker follows the stored records in the order received, on the index
`ix_collection_records_received` (received_at, organization, form, record id). Every stored record adds an entry
to it. This measures that entry's price where it is paid: the collection's own `insert_records` (binary COPY for
a bulk chunk, one JSON document for a real-time batch) writes `--records` new records in chunks, once into the
table without the index and once with it (the same rows, the table emptied between runs, alternated `--rounds`
times), and reports per record the database backend's CPU (read from /proc, the server is local), the WAL bytes,
the wall time and the index's size. The run without the index is the ceiling the index is judged against.

Last line: `index_cpu_us_per_record=A index_wal_bytes_per_record=B index_bytes_per_record=C`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository.stored_records import insert_records
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.driver import pg_driver
from cityhealth.db.engine import Database

START = datetime(2022, 6, 1, 8, tzinfo=UTC)
_WAL_AT = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
INDEX = ("CREATE INDEX ix_collection_records_received ON collection_records "
         "(received_at, organization_id, form, record_id)")


def _rows(count: int) -> list[tuple[Any, ...]]:
    """New records as insert_records takes them: a visit's fields, about the size of a real one."""
    rows = []
    for n in range(count):
        fields = orjson.dumps({"visit_no": f"MZ2022060{n:09d}", "patient_id": f"P{n % 400_000:08d}",
                               "dept_code": "03.01", "dept_name": "心血管内科门诊", "doctor_code": f"D{n % 700:04d}",
                               "doctor_name": "医生", "visit_time": "2022-06-01T08:30:00+08:00",
                               "patient_type_code": "1", "patient_type_name": "普通门诊", "first_visit": True})
        rows.append(("outpatient_visit", f"MZ2022060{n:09d}", 1, uuid.uuid4().hex, fields, START, 202206, 2, 202206,
                     None))
    return rows


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(database: Database, rows: list[tuple[Any, ...]], chunk: int, *, indexed: bool) -> dict[str, float]:
    async with database.transaction() as session:
        driver = await pg_driver(session)
        await driver.execute("DROP INDEX IF EXISTS ix_collection_records_received")
        await driver.execute("TRUNCATE collection_records")
        if indexed:
            await driver.execute(INDEX)
    await asyncio.sleep(0)
    async with database.engine.connect() as connection:  # one backend for the whole run, so /proc can follow it
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None  # noqa: S101 - asyncpg always has one
        pid = int(await driver.fetchval("SELECT pg_backend_pid()"))
        lsn_before = await driver.fetchval(_WAL_AT)
        cpu, wall = _backend_cpu_s(pid), time.perf_counter()
        for at, start in enumerate(range(0, len(rows), chunk)):
            received = START + timedelta(seconds=at)
            async with AsyncSession(bind=connection) as session, session.begin():
                await insert_records(session, 1, received, None, rows[start:start + chunk])
        wall = time.perf_counter() - wall
        cpu = _backend_cpu_s(pid) - cpu
        wal = float(await driver.fetchval(_WAL_AT) - lsn_before)
        size = float(await driver.fetchval(
            "SELECT COALESCE(pg_relation_size(to_regclass('ix_collection_records_received')), 0)"))
    return {"cpu_us": 1e6 * cpu / len(rows), "wal_bytes": wal / len(rows), "wall_us": 1e6 * wall / len(rows),
            "index_bytes": size / len(rows)}


async def main(args: argparse.Namespace) -> None:
    name = f"ch_bench_received_{uuid.uuid4().hex[:8]}"
    url = (await create_database(args.url, name)).replace("postgresql://", "postgresql+asyncpg://", 1)
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, field_encryption_key=generate_key(),
                        lookup_hmac_key=generate_key(), token_signing_key=generate_key())
    try:
        await asyncio.to_thread(upgrade, settings)
        database = Database(url)
        rows = _rows(args.records)
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        try:
            for _ in range(args.rounds):
                for indexed in (False, True):
                    runs[indexed].append(await _run(database, rows, args.chunk, indexed=indexed))
        finally:
            await database.dispose()
    finally:
        await drop_database(args.url, name)
    median = {indexed: {key: statistics.median(run[key] for run in found) for key in found[0]}
              for indexed, found in runs.items()}
    for indexed, figures in median.items():
        print(f"{'with' if indexed else 'without'} the index: backend CPU {figures['cpu_us']:.2f} µs/record, "
              f"WAL {figures['wal_bytes']:.0f} B/record, wall {figures['wall_us']:.2f} µs/record "
              f"(median of {args.rounds}, {args.records} records in chunks of {args.chunk})")
    cpu = median[True]["cpu_us"] - median[False]["cpu_us"]
    wal = median[True]["wal_bytes"] - median[False]["wal_bytes"]
    load = os.getloadavg()
    print(f"machine: cores={os.cpu_count()} loadavg={load[0]:.2f}")
    print(f"index_cpu_us_per_record={cpu:.2f} index_wal_bytes_per_record={wal:.0f} "
          f"index_bytes_per_record={median[True]['index_bytes']:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CITYHEALTH_TEST_PG_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=5_000, help="records per insert (a bulk chunk: COPY)")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
