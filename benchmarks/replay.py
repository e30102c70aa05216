"""Goal 6: replay the Nanjing month on PostgreSQL and time the bulletin that reads it back.

Creates a fresh PostgreSQL database on the server of CITYHEALTH_DATABASE_URL (or CITYHEALTH_TEST_PG_URL),
migrates it, runs the simulator at --scale (the month through the platform's own API, in-process ASGI),
then builds and renders the bulletin (every edition) from the maintained aggregates. Drops the database
afterwards unless --keep. Prints the core count and, last, `scale=S simulate_s=X records_per_s=R bulletin_s=Y`.

    .venv/bin/python benchmarks/replay.py [--scale 0.01] [--seed 1] [--keep] [--task-workers N]

With --task-workers N, N `cityhealth worker` processes (each in a directory of its own, keys from the
environment as on another machine) run the bulk jobs and the server runs none; with 0, the server's own
in-process worker runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import postgres_cpu_s

from cityhealth.app import create_app
from cityhealth.config import SECRET_NAMES, Environment, Settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.reporting.service import Edition, build_bulletin, render
from cityhealth.simulation.driver import simulate
from cityhealth.simulation.scenario import bundled_scenario, load_scenario


def _server_url() -> str:
    return os.environ.get("CITYHEALTH_DATABASE_URL") or os.environ.get(
        "CITYHEALTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _bulletin(url: str, month: str) -> float:
    database = Database(url)
    try:
        started = time.perf_counter()
        async with database.transaction() as session:
            data = await build_bulletin(session, month)
        for edition in Edition:
            render(data, edition)
        return time.perf_counter() - started
    finally:
        await database.dispose()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _start_workers(count: int, url: str, keys: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    environment = {**os.environ, "CITYHEALTH_DATABASE_URL": url,
                   **{f"CITYHEALTH_{name.upper()}": key for name, key in keys.items()}}
    return [
        subprocess.Popen(
            [sys.executable, "-c", "from cityhealth.cli import main; main()", "worker"],
            cwd=tempfile.mkdtemp(prefix=f"cityhealth-worker-{n}-"),
            env={**environment, "CITYHEALTH_VAR_DIR": "var"},
        )
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="0.01")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--task-workers", type=int, default=0,
                        help="`cityhealth worker` processes that run the bulk jobs (0: the server runs them)")
    args = parser.parse_args()

    server = _server_url()
    name = f"ch_replay_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(server, name))
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            keys = {name: base64.urlsafe_b64encode(os.urandom(32)).decode() for name in SECRET_NAMES}
            settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=Path(var_dir),
                                server_worker_concurrency=0 if args.task_workers else 1,
                                **keys)  # type: ignore[arg-type]
            upgrade(settings)
            scenario = load_scenario(bundled_scenario("nanjing-2022-06"))
            started, database_before, own_before = time.perf_counter(), postgres_cpu_s(), _cpu(resource.RUSAGE_SELF)
            workers = _start_workers(args.task_workers, url, keys)
            try:
                result = simulate(create_app, settings, scenario, Decimal(args.scale), args.seed)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(timeout=60)
            simulate_s = time.perf_counter() - started
            database_cpu = postgres_cpu_s() - database_before
            # The app has shut down: its worker processes and the body writer are reaped and counted as children.
            own, children = _cpu(resource.RUSAGE_SELF) - own_before, _cpu(resource.RUSAGE_CHILDREN)
            bulletin_s = asyncio.run(_bulletin(url, scenario.month))
    finally:
        if not args.keep:
            asyncio.run(drop_database(server, name))
    print(f"cores={os.cpu_count()} database=postgresql task_workers={args.task_workers} "
          f"uploaded={result.uploaded} bookings={result.bookings}")
    # Where the month's time went (bulk_send includes bodies_wait).
    print(f"upload_s={result.upload_s:.1f} " + " ".join(
        f"{phase}_s={seconds:.1f}" for phase, seconds in sorted(result.phases_s.items())))
    # What the month cost the machine: the one process (simulator, API, bookings, and the bulk jobs without
    # task workers), the child processes (task workers, prepare processes, the body writer) and PostgreSQL,
    # against the cores for the month's wall time.
    cpu = {"process": own, "workers": children, "database": database_cpu}
    print(" ".join(f"cpu_{part}_s={seconds:.0f}" for part, seconds in cpu.items()) +
          f" cores_busy={sum(cpu.values()) / simulate_s:.2f}/{os.cpu_count()}")
    print(f"scale={args.scale} simulate_s={simulate_s:.1f} records_per_s={result.records_per_s:.0f} "
          f"bulletin_s={bulletin_s:.3f}")


if __name__ == "__main__":
    main()
