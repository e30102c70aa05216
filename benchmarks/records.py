"""Records benchmark on PostgreSQL: the master index's bulk load and lookup, linkage, and the shared record page.

A scratch database on the server at `--url` (default CITYHEALTH_TEST_PG_URL) migrated to head gets `--residents`
residents, each a distinct ID number, through the registry's bulk import (`registry.imports.import_records`, a
transaction per 5,000 rows, the rows made before the clock starts; with the process's CPU per resident), then the
same rows, hashed and encrypted beforehand, sent by COPY alone (the database's own ceiling, with and without an
audit event's row each); `--lookups` lookups by ID number through `registry.service` (the keyed hash, then the
index); `--patients` patient master records (each one a resident's, a tenth of them with a passport instead, so the
score decides) and as many visits with a diagnosis each, written to the collection's stored records as the
collector stores them, then linked and indexed by the linker (`records.tasks.run_linker`); and `--openings` shared
records of linked residents, read as `records.shared_record.shared_record` serves them.
The issue's scale is 10 million residents; here it runs at what the machine allows (`--residents`).
Last line: `residents_per_s=A lookup_p99_ms=B link_per_s=C record_p99_ms=D`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from sqlalchemy import insert

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.collection.models import Record
from cityhealth.collection.prepare import Collector
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.driver import pg_driver
from cityhealth.db.engine import Database
from cityhealth.records import shared_record
from cityhealth.records.tasks import run_linker
from cityhealth.registry import imports
from cityhealth.registry import service as registry
from cityhealth.registry.identifiers import make_resident_id
from cityhealth.registry.models import Organization
from cityhealth.registry.protection import ID_NUMBER, PHONE
from cityhealth.security.crypto import field_cipher

BATCH = 5_000
NOW = datetime(2022, 6, 15, 9, 30, tzinfo=BUSINESS_TZ)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def _person(n: int) -> dict[str, Any]:
    """Resident n's row; a distinct ID number for each n below 25 million: the birth date walks 25,000 days, and the
    sequence code (its parity the sex) moves on by one with each lap."""
    born = date(1940, 1, 1) + timedelta(days=(n * 7919) % 25_000)
    seq = (n + n // 25_000) % 1000
    sex = 1 if seq % 2 else 2
    return {"id_number": make_resident_id("320102", born, seq),
            "name": f"{SURNAMES[n % len(SURNAMES)]}居民{n}", "sex": sex, "birth_date": born.isoformat(),
            "phone": f"139{n:08d}"}


async def _load(database: Database, clock: SimulatedClock, settings: Settings, count: int) -> tuple[float, float]:
    """Residents per second through the import, and this process's CPU seconds per resident."""
    cipher = field_cipher(settings)
    # The file's rows are made before the clock starts, as a file is read before its import: making the numbers
    # (check characters, dates) costs more than importing them.
    batches = [[(n + 1, _person(n)) for n in range(first, min(count, first + BATCH))]
               for first in range(0, count, BATCH)]
    with imports.heap_frozen():  # as `cityhealth registry import` runs it
        started, cpu = time.perf_counter(), time.process_time()
        for rows in batches:
            async with database.transaction() as session:
                await imports.import_records(session, clock, "residents", rows, cipher=cipher, actor="bench")
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count


_CEILING_RESIDENT_COLUMNS = ["id", "id_number_hash", "id_number_enc", "name", "sex", "birth_date", "phone_hash",
                             "phone_enc", "address_area_code", "is_active", "created_at", "updated_at"]
_CEILING_EVENT_COLUMNS = ["occurred_at", "actor", "actor_kind", "action", "resource_type", "resource_id",
                          "resident_id", "outcome", "detail", "prev_hash", "hash"]


async def _copy_ceiling(database: Database, settings: Settings, count: int) -> tuple[float, float]:
    """The database's own bound, residents per second: the same residents' rows, hashed and encrypted before the
    clock starts, sent by COPY in transactions of BATCH rows into tables shaped like residents and audit_events
    (their indexes, not their triggers); the rows alone, then each with its audit event's row."""
    cipher = field_cipher(settings)
    residents, events = [], []
    for n in range(count):
        person = _person(n)
        number, phone = person["id_number"], person["phone"]
        residents.append((n + 1, cipher.lookup_hash(ID_NUMBER, number), cipher.encrypt(ID_NUMBER, number),
                          person["name"], person["sex"], date.fromisoformat(person["birth_date"]),
                          cipher.lookup_hash(PHONE, phone), cipher.encrypt(PHONE, phone), None, True, NOW, NOW))
        events.append((NOW, "bench", "anonymous", "create", "resident", str(n + 1), n + 1, "success", "import",
                       hashlib.sha256(b"%d" % n).hexdigest(), hashlib.sha256(b"%d" % (n + 1)).hexdigest()))
    async with database.transaction() as session:
        driver = await pg_driver(session)
        await driver.execute("CREATE TABLE bench_residents (LIKE residents INCLUDING ALL);"
                             "CREATE TABLE bench_audit_events (LIKE audit_events INCLUDING ALL)")
    figures = []
    for with_events in (False, True):
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            async with database.transaction() as session:
                driver = await pg_driver(session)
                await driver.copy_records_to_table("bench_residents", records=residents[first:first + BATCH],
                                                   columns=_CEILING_RESIDENT_COLUMNS)
                if with_events:
                    await driver.copy_records_to_table("bench_audit_events", records=events[first:first + BATCH],
                                                       columns=_CEILING_EVENT_COLUMNS)
        figures.append(count / (time.perf_counter() - started))
        async with database.transaction() as session:
            await (await pg_driver(session)).execute("TRUNCATE bench_residents, bench_audit_events")
    return figures[0], figures[1]


async def _lookups(database: Database, clock: SimulatedClock, settings: Settings, residents: int,
                   lookups: int) -> float:
    cipher = field_cipher(settings)
    chosen = [_person(random.randrange(residents))["id_number"] for _ in range(lookups)]
    timings = []
    for number in chosen:
        started = time.perf_counter()
        async with database.transaction() as session:
            hashed = registry.id_number_hash(cipher, clock, number)
            found = await registry.resident_ids_by_id_number_hash(session, [hashed] if hashed else [])
        timings.append(time.perf_counter() - started)
        if len(found) != 1:
            raise SystemExit(f"lookup found {len(found)} residents for one loaded number")
    return _p99_ms(timings)


async def _records(database: Database, settings: Settings, residents: int, patients: int) -> tuple[int, int]:
    """Stored records for `patients` patients of one hospital: master, visit, diagnosis each."""
    async with database.transaction() as session:
        org = Organization(code="H-BENCH", name="基准医院", kind="hospital", active_from=date(2000, 1, 1),
                           created_at=NOW, updated_at=NOW)
        session.add(org)
        await session.flush()
        organization_id = org.id
    collector = Collector(settings)
    sealed = collector.sealed_bytes
    rows: list[dict[str, Any]] = []
    chosen = random.sample(range(residents), patients)

    async def flush() -> None:
        async with database.transaction() as session:
            await session.execute(insert(Record), rows)
        rows.clear()

    for k, n in enumerate(chosen):
        who = _person(n)
        received = NOW - timedelta(hours=2) + timedelta(microseconds=k)
        master = {"patient_id": f"P{n}", "name": who["name"], "sex_code": str(who["sex"]),
                  "birth_date": who["birth_date"].replace("-", ""), "phone": who["phone"], "id_type_code": "01",
                  "id_number": who["id_number"]}
        if k % 10 == 0:
            master |= {"id_type_code": "03", "id_number": f"E{n:08d}"}
        visit = {"visit_no": f"V{n}", "patient_id": f"P{n}", "dept_name": "内科", "patient_type_name": "门诊"}
        diagnosis = {"visit_no": f"V{n}", "seq": 1, "diagnosis_code": "I10", "diagnosis_name": "原发性高血压"}
        for form, record, names in (("patient_master_index", master, ("id_number", "phone")),
                                    ("outpatient_visit", visit, ()), ("outpatient_diagnosis", diagnosis, ())):
            rows.append({"organization_id": organization_id, "form": form, "record_id": f"{form}-{n}",
                         "version": 1, "action": 1, "payload_hash": uuid.uuid4().hex,
                         "fields": orjson.loads(sealed(record, names)), "event_time": received,
                         "event_month": 202206, "first_received_at": received, "received_at": received,
                         "conformance": 0, "conformance_month": None, "job_id": None, "health_record_no": None})
        if len(rows) >= 3 * 1000:
            await flush()
    if rows:
        await flush()
    return organization_id, 3 * patients


async def _openings(database: Database, settings: Settings, openings: int) -> float:
    from sqlalchemy import select

    from cityhealth.records.models import PatientLink

    cipher = field_cipher(settings)
    async with database.transaction() as session:
        linked = list((await session.scalars(select(PatientLink.resident_id).where(
            PatientLink.status == "linked"))).all())
    timings = []
    for resident_id in random.sample([r for r in linked if r is not None], min(openings, len(linked))):
        started = time.perf_counter()
        async with database.transaction() as session:
            page = await shared_record.shared_record(session, cipher, resident_id, 0, before=None, limit=50)
        timings.append(time.perf_counter() - started)
        if not page.timeline:
            raise SystemExit(f"resident {resident_id}'s shared record shows nothing linked")
    return _p99_ms(timings)


def _p99_ms(timings: list[float]) -> float:
    ordered = sorted(timings)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main(args: argparse.Namespace) -> None:
    random.seed(7)
    name = f"ch_bench_records_{uuid.uuid4().hex[:8]}"
    url = (await create_database(args.url, name)).replace("postgresql://", "postgresql+asyncpg://", 1)
    folder = Path(tempfile.gettempdir()) / name
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=folder,
                        field_encryption_key=generate_key(), lookup_hmac_key=generate_key(),
                        token_signing_key=generate_key())
    clock = SimulatedClock(NOW)
    try:
        await asyncio.to_thread(upgrade, settings)
        database = Database(url)
        try:
            async with database.transaction() as session:
                await imports.load_reference(session, clock, "nanjing")
            per_s, cpu_s = await _load(database, clock, settings, args.residents)
            print(f"bulk load: {args.residents} residents at {per_s:.0f}/s, {1e6 * cpu_s:.1f} µs of this process's "
                  f"CPU per resident (the database's own not counted); loadavg {os.getloadavg()[0]:.2f}")
            bare, bare_events = await _copy_ceiling(database, settings, args.residents)
            print(f"bulk load ceiling (COPY of the same rows, prepared beforehand): {bare:.0f} residents/s alone, "
                  f"{bare_events:.0f}/s with an audit event each; loadavg {os.getloadavg()[0]:.2f}")
            lookup = await _lookups(database, clock, settings, args.residents, args.lookups)
            print(f"lookup by ID number: p99 {lookup:.2f} ms over {args.lookups}")
            _, stored = await _records(database, settings, args.residents, args.patients)
            started, cpu = time.perf_counter(), time.process_time()
            counts = await run_linker(database, clock, field_cipher(settings))
            link_per_s = counts.read / (time.perf_counter() - started)
            print(f"linkage: {1000 * (time.process_time() - cpu) / max(counts.read, 1):.2f} ms of this process's "
                  "CPU per record (the database's own not counted)")
            print(f"linkage: {counts.read} of {stored} stored records read, {counts.linked} identities linked, "
                  f"{counts.queued} queued, {counts.unlinked} unlinked, {counts.indexed} indexed; "
                  f"{link_per_s:.0f} records/s")
            record = await _openings(database, settings, args.openings)
            print(f"shared record page: p99 {record:.2f} ms over {args.openings}")
            load = os.getloadavg()
            print(f"machine: cores={os.cpu_count()} loadavg={load[0]:.2f} (shared; wall-clock figures follow it)")
            print(f"residents_per_s={per_s:.0f} lookup_p99_ms={lookup:.2f} link_per_s={link_per_s:.0f} "
                  f"record_p99_ms={record:.2f}")
        finally:
            await database.dispose()
    finally:
        await drop_database(args.url, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CITYHEALTH_TEST_PG_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--openings", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
