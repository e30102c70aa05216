"""Bulk ingest throughput, server memory and real-time latency of data collection.

Spawns the server (uvicorn, 127.0.0.1) on CITYHEALTH_DATABASE_URL (PostgreSQL) with --task-workers
`cityhealth worker` processes that run the bulk jobs (the server runs none), or on a fresh SQLite file with
--sqlite (the server runs them in-process), registers a hospital and mints a machine client token with the
server's own key (same CITYHEALTH_VAR_DIR), generates an NDJSON file with the real mix of forms and 2%
invalid records, gzip-compressed as a hospital sends a day's file (--plain: as it is; 2M records are 729 MB plain,
past the 512 MB upload limit, and 47 MB compressed), and runs two phases:

1. bulk: the file is uploaded through POST /api/collection/jobs and the job is polled until it completes;
   records/s is records ÷ (upload start → job completed), i.e. uploaded → validated → stored → counted.
   The peak RSS of each process (server, workers and their prepare processes: VmHWM) is read after it.
2. real time: 100-record batches at --rate requests/s for --realtime-seconds, open loop (each request is due
   at its scheduled time; a late start counts in its latency), from pre-built bodies over persistent
   HTTP/1.1 connections, so that the load generator spends as little of the shared CPU as possible. With
   --during-bulk it runs while the bulk job is processed (the issue's target; p50/p99 by when requests were
   due, --realtime-after to start it later), and in every case after the job on its own, new records, with
   the server's and the database's CPU per request (the CPU budget's real-time share).

CPU is summed over the server and the workers (their processes and children), and printed per process.

Last line: records_per_s=N peak_rss_mb=M realtime_p99_ms=P
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import database_cpu_s
from benchmarks.realtime_load import Load, realtime, realtime_bodies
from benchmarks.server_processes import Memory, cpu_by_process, cpu_s, cpu_shares
from tests.factories.collection import make_record

from cityhealth.clock import SystemClock
from cityhealth.config import Environment, load_settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry.models import Organization
from cityhealth.security.models import MachineClient
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.tokens import issue_access_token

# Share of each form in a hospital's feed (lab and prescriptions dominate, as in the bulletin's volumes).
MIX = {
    "patient_master_index": 4,
    "outpatient_visit": 14,
    "outpatient_diagnosis": 14,
    "prescription": 18,
    "lab_report": 20,
    "exam_report": 5,
    "admission": 2,
    "inpatient_order": 14,
    "surgery": 1,
    "discharge": 2,
    "settlement": 6,
}
INVALID_SHARE = 0.02
BATCH_RECORDS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def register(url: str, code: str) -> int:
    database = Database(url)
    now = SystemClock().now()
    try:
        async with database.transaction() as session:
            org = Organization(
                code=code,
                name=f"基准医院{code}",
                kind="hospital",
                area_code=None,
                active_from=date(2020, 1, 1),
                created_at=now,
                updated_at=now,
            )
            session.add(org)
            await session.flush()
            # The token endpoint wants a signed client assertion; the benchmark registers the client row and
            # mints its access token with the server's key instead (same CITYHEALTH_VAR_DIR).
            session.add(
                MachineClient(
                    client_id=f"bench-{code}",
                    name="benchmark",
                    organization_id=org.id,
                    scopes=Scope.COLLECTION_UPLOAD.value,
                    jwks='{"keys": []}',
                    created_at=now,
                    updated_at=now,
                )
            )
            return org.id
    finally:
        await database.dispose()


def token(organization_id: int, code: str) -> str:
    settings = load_settings()
    principal = Principal(
        kind=PrincipalKind.CLIENT,
        subject=f"client:bench-{code}",
        scopes=frozenset({Scope.COLLECTION_UPLOAD}),
        organization_id=organization_id,
    )
    return issue_access_token(
        principal, key=settings.secret("token_signing_key"), now=SystemClock().now(), ttl_s=settings.access_token_ttl_s
    )


def generate(path: Path, code: str, count: int, seed: int = 7, *, compress: bool = True) -> tuple[int, int]:
    """Write the upload (gzip-compressed unless `compress` is false); returns (invalid records, NDJSON bytes)."""
    rng = random.Random(seed)
    forms = list(MIX)
    weights = list(MIX.values())
    base = SystemClock().now() - timedelta(hours=6)
    invalid = size = 0
    # mtime=0: the same records make the same file (a re-run is the same job's content, as a hospital's re-send)
    with path.open("wb") as raw, (gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw) as out:
        for i in range(count):
            form = rng.choices(forms, weights)[0]
            record = make_record(form, code, f"{form[:3]}-{i}", base + timedelta(seconds=i % 18000))
            if rng.random() < INVALID_SHARE:
                invalid += 1
                record["action"] = 7  # a code outside CH.action
            line = orjson.dumps({"form": form, **record}) + b"\n"
            size += len(line)
            out.write(line)
    return invalid, size


async def bulk(
    base_url: str, senders: list[tuple[str, int, Path]], memory: Memory, *, compressed: bool = True
) -> tuple[float, dict[str, object]]:
    """Every sender uploads its file at once; the time runs until the last job completed. Returns the jobs'
    summed counts (and the first failure's status, if any)."""

    async def stream(path: Path):  # type: ignore[no-untyped-def]
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    async def one(client: httpx.AsyncClient, code: str, org_id: int, path: Path) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token(org_id, code)}"}
        upload = {"content-type": "application/x-ndjson"} | ({"content-encoding": "gzip"} if compressed else {})
        response = await client.post("/api/collection/jobs", content=stream(path), headers={**headers, **upload})
        response.raise_for_status()
        job_id = response.json()["id"]
        minted = time.monotonic()
        while True:
            # A token lives 5 minutes and a 2M-record job under load takes longer: a fresh one every minute
            # (with the first one, every poll after its expiry was a 401, then a 429, and the run never ended).
            if time.monotonic() - minted > 60:
                headers, minted = {"Authorization": f"Bearer {token(org_id, code)}"}, time.monotonic()
            polled = await client.get(f"/api/collection/jobs/{job_id}", headers=headers)
            polled.raise_for_status()
            job: dict[str, Any] = polled.json()
            if job["status"] in ("completed", "failed"):
                return job
            await asyncio.sleep(0.1)

    async def sample() -> None:
        while True:
            memory.sample()
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(7200.0)) as client:
        started = time.perf_counter()
        sampler = asyncio.create_task(sample())
        try:
            jobs = await asyncio.gather(*(one(client, code, org_id, path) for code, org_id, path in senders))
        finally:
            sampler.cancel()
        elapsed = time.perf_counter() - started
    counts: Counter[str] = Counter()
    for job in jobs:
        counts.update(job["counts"])
    failed = [job for job in jobs if job["status"] != "completed"]
    return elapsed, {"status": failed[0]["status"] if failed else "completed", "counts": dict(counts)}


def start_workers(count: int, concurrency: int, profile: str | None = None) -> list[subprocess.Popen[bytes]]:
    """`cityhealth worker` processes, each in a working directory of its own (as on other machines)."""
    started = []
    environment = os.environ.copy()
    # A relative PYTHONPATH (`src:.` from a work tree) would name nothing from the worker's own directory, and
    # the worker would import whatever copy of the package the interpreter has installed instead.
    environment["PYTHONPATH"] = os.pathsep.join(
        str(Path(entry).resolve()) for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry
    )
    for n in range(count):
        directory = Path(tempfile.mkdtemp(prefix=f"cityhealth-worker-{n}-"))
        started.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, *(["-m", "cProfile", "-o", f"{profile}.{n}"] if profile else []),
                 "-m", "cityhealth.cli", "worker", "--concurrency", str(concurrency)],
                cwd=directory,
                env=environment,
            )
        )
    return started


async def workers_ready(url: str, count: int) -> None:
    """Until `count` worker processes have registered (two loops each): their start-up is not the job's CPU."""
    database = Database(url)
    try:
        for _ in range(1200):
            async with database.transaction() as session:
                found = (await session.execute(text("SELECT count(*) FROM procrastinate_workers"))).scalar_one()
            if found >= 2 * count:
                return
            await asyncio.sleep(0.1)
        raise SystemExit("the workers did not start")
    finally:
        await database.dispose()


def start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "uvicorn",
            "cityhealth.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-keep-alive",
            "60",
        ],
        env=os.environ.copy(),
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


async def _together(first: Any, second: Any) -> tuple[Any, Any]:
    return tuple(await asyncio.gather(first, second))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--realtime-seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--realtime-after", type=float, default=0.0,
                        help="with --during-bulk: start the real-time load this many seconds into the bulk upload")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--task-workers", type=int, default=1, help="`cityhealth worker` processes (PostgreSQL)")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks at once per worker process")
    parser.add_argument("--during-bulk", action="store_true", help="send the real-time load during the bulk job")
    parser.add_argument("--jobs", type=int, default=1,
                        help="hospitals uploading at once, the records split between them (a district's day)")
    parser.add_argument("--plain", action="store_true",
                        help="upload plain NDJSON instead of gzip (a file past the 512 MB upload limit is refused)")
    parser.add_argument("--sqlite", action="store_true", help="run on a fresh SQLite file instead of PostgreSQL")
    parser.add_argument("--upload-cache", help="a folder keeping the generated files for the next run (same records)")
    parser.add_argument("--profile-workers", help="run the task workers under cProfile, writing FILE.<n> at exit")
    parser.add_argument("--realtime-unit", choices=("same", "other"), default="same",
                        help="the real-time batches' sender: the bulk job's own unit (its lock is shared) or another")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    args = parser.parse_args()
    own_var_dir = "CITYHEALTH_VAR_DIR" not in os.environ
    var_dir = Path(os.environ.setdefault("CITYHEALTH_VAR_DIR", tempfile.mkdtemp(prefix="cityhealth-bench-")))
    if args.sqlite:
        os.environ["CITYHEALTH_DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite'}"
    server_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not (server_url.startswith("postgres") or args.sqlite):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server, or pass --sqlite")
    scratch = None if args.sqlite else f"ch_bench_ingest_{uuid.uuid4().hex[:8]}"
    if scratch is not None:  # a database of its own on that server, dropped afterwards
        os.environ["CITYHEALTH_DATABASE_URL"] = asyncio.run(create_database(server_url, scratch))
    try:
        run(args, var_dir, own_var_dir, server_url, scratch)
    finally:
        if scratch is not None and not args.keep:
            asyncio.run(drop_database(server_url, scratch))
        elif scratch is not None:
            print(f"kept database {scratch}")


def run(args: argparse.Namespace, var_dir: Path, own_var_dir: bool, server_url: str, scratch: str | None) -> None:
    url = os.environ["CITYHEALTH_DATABASE_URL"]
    database = "sqlite" if args.sqlite else "postgresql"
    upgrade(load_settings(env=Environment.DEVELOPMENT))
    # A fixed code with --upload-cache (the scratch database is new every run), so a cached file's records fit.
    codes = [f"BENCH{'' if args.upload_cache else int(time.time())}{n:03d}" for n in range(args.jobs)]
    org_ids = [asyncio.run(register(url, code)) for code in codes]
    code, org_id = codes[0], org_ids[0]
    if args.realtime_unit == "other":  # a second hospital sends the real-time batches: no lock shared with bulk
        code = f"{codes[0]}RT"
        org_id = asyncio.run(register(url, code))
    task_workers = 0 if args.sqlite else args.task_workers
    if task_workers:
        os.environ["CITYHEALTH_SERVER_WORKER_CONCURRENCY"] = "0"  # the worker processes run the jobs
    print(f"cores={os.cpu_count()} records={args.records} jobs={args.jobs} database={database} workers={args.workers} "
          f"task_workers={task_workers}x{args.concurrency}")
    if args.upload_cache:
        Path(args.upload_cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        senders = []
        invalid = size = sent = 0
        for n, (sender_code, sender_id) in enumerate(zip(codes, org_ids, strict=True)):
            share = args.records // args.jobs + (n < args.records % args.jobs)
            name = f"upload-{share}-{n}.ndjson{'' if args.plain else '.gz'}"
            path = Path(args.upload_cache or folder) / name
            if args.upload_cache and path.exists() and path.with_suffix(".sizes").exists():
                bad, plain = map(int, path.with_suffix(".sizes").read_text().split())
            else:
                bad, plain = generate(path, sender_code, share, seed=7 + n, compress=not args.plain)
                path.with_suffix(".sizes").write_text(f"{bad} {plain}")
            invalid += bad
            size += plain
            sent += path.stat().st_size
            senders.append((sender_code, sender_id, path))
        print(f"generated {size / 1e6:.0f} MB in {args.jobs} file(s), {invalid} invalid records", flush=True)
        print(f"sent as {'plain NDJSON' if args.plain else 'gzip'}: {sent / 1e6:.0f} MB", flush=True)
        bodies = realtime_bodies(code, int(args.rate * args.realtime_seconds))
        port = free_port()
        server = start_server(port, args.workers)
        workers = start_workers(task_workers, args.concurrency, args.profile_workers)
        roots = [server.pid, *(worker.pid for worker in workers)]
        if workers:
            asyncio.run(workers_ready(url, len(workers)))
        try:
            memory = Memory(roots)
            cpu_before = cpu_s(roots)
            by_process = cpu_by_process(roots)
            p99 = float("nan")
            bearer = f"Bearer {token(org_id, code)}"
            load = Load()
            if args.during_bulk:
                (seconds, job), load = asyncio.run(
                    _together(bulk(f"http://127.0.0.1:{port}", senders, memory, compressed=not args.plain),
                              realtime(port, bearer, bodies, args.rate, args.realtime_after))
                )
            else:
                seconds, job = asyncio.run(bulk(f"http://127.0.0.1:{port}", senders, memory, compressed=not args.plain))
            memory.sample()
            records_per_s = args.records / seconds
            bulk_cpu = cpu_s(roots) - cpu_before
            print(f"CPU per process, µs/record: {cpu_shares(roots, by_process, args.records)}", flush=True)
            # The pools keep their connections: their backends' CPU is the database's share of the job.
            database_cpu = 0.0 if scratch is None else asyncio.run(database_cpu_s(server_url, scratch))
            print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}", flush=True)
            print(
                f"bulk: {seconds:.1f} s, job {job['status']}, counts {job['counts']}, "
                f"server+workers CPU {bulk_cpu:.1f} s ({bulk_cpu / args.records * 1e6:.1f} µs/record), "
                f"peak RSS per process {', '.join(f'{mb:.0f}' for mb in memory.hwm.values())} MB",
                flush=True,
            )
            if database_cpu:
                per_record = (bulk_cpu + database_cpu) / args.records
                print(
                    f"database CPU {database_cpu:.1f} s ({database_cpu / args.records * 1e6:.1f} µs/record); "
                    f"server + workers + database {per_record * 1e6:.1f} µs/record: at most "
                    f"{os.cpu_count() or 1} / that = {(os.cpu_count() or 1) / per_record:.0f} records/s on idle cores",
                    flush=True,
                )
            if bodies and args.during_bulk:
                print(f"realtime during the bulk job: {len(load.latencies_ms)} requests at {args.rate:.0f}/s, "
                      f"{load.failures} failed, p50 {load.percentile(0.5):.1f} ms, p99 {load.percentile(0.99):.1f} ms"
                      f"; p50/p99 by due time {load.windows()}", flush=True)
                p99 = load.percentile(0.99)
            if bodies:  # alone (after the job: its CPU per request), with records of its own
                cpu_before = cpu_s(roots)
                db_before = 0.0 if scratch is None else asyncio.run(database_cpu_s(server_url, scratch))
                alone = asyncio.run(realtime(port, bearer, realtime_bodies(code, len(bodies), "alone"), args.rate))
                realtime_cpu = (cpu_s(roots) - cpu_before) / len(alone.latencies_ms) * 1000
                db_after = 0.0 if scratch is None else asyncio.run(database_cpu_s(server_url, scratch))
                db_cpu = (db_after - db_before) / len(alone.latencies_ms) * 1000
                print(f"realtime alone: {len(alone.latencies_ms)} requests at {args.rate:.0f}/s, {alone.failures} "
                      f"failed, p50 {alone.percentile(0.5):.1f} ms, p99 {alone.percentile(0.99):.1f} ms, "
                      f"server CPU {realtime_cpu:.2f} ms/request, database {db_cpu:.2f} ms/request;"
                      f" load average {os.getloadavg()[0]:.1f}")
                p99 = p99 if args.during_bulk else alone.percentile(0.99)
        finally:
            for process in (*workers, server):
                process.terminate()
            for process in (*workers, server):
                process.wait(timeout=60)
            if own_var_dir:  # with --sqlite, the database
                shutil.rmtree(var_dir, ignore_errors=True)
    print(f"records_per_s={records_per_s:.0f} peak_rss_mb={memory.peak_mb:.0f} realtime_p99_ms={p99:.1f}")


if __name__ == "__main__":
    main()
