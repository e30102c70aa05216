"""Goal 6: replay the Nanjing month on PostgreSQL and time the bulletin that reads it back.

Creates a fresh PostgreSQL database on the server of CITYHEALTH_DATABASE_URL (or CITYHEALTH_TEST_PG_URL),
migrates it, runs the simulator at --scale (the month through the platform's own API, in-process ASGI),
then builds and renders the bulletin (every edition) from the maintained aggregates. Drops the database
afterwards unless --keep. Prints the core count and, last, `scale=S simulate_s=X records_per_s=R bulletin_s=Y`;
checks that the bulletin's JSON edition is the scenario's expected() (docs/scenario-format.md). While the month
runs, prints a line a day to stderr (records sent, rate, peak RSS of the server and of the workers, load
average), and the same for the days done if it is interrupted (Ctrl-C or SIGTERM) or fails.

    .venv/bin/python benchmarks/replay.py [--scale 0.01] [--seed 1] [--keep] [--task-workers N]

With --task-workers N, N `cityhealth worker` processes (each in a directory of its own, keys from the
environment as on another machine) run the bulk jobs and the server runs none; with 0, the server's own
in-process worker runs them. The workers run no periodic work (`--no-periodic`): the month's clock is
simulated, and their system clock would sweep its holds and escalate its follow-ups by today's date.
The workers and their directories, the scratch directory and (unless --keep) the database go on every path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import postgres_cpu_s, process_tree_cpu_s
from tests.reporting.expected import expected
from tests.simulation.test_round_trip import assert_matches_expected

from cityhealth.app import create_app
from cityhealth.config import SECRET_NAMES, Environment, Settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.reporting.service import Edition, build_bulletin, render
from cityhealth.simulation.driver import simulate
from cityhealth.simulation.scenario import bundled_scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "nanjing-2022-06"
WORKER_STOP_S = 60  # a worker's graceful stop (its running chunk rolls back), then it is killed


def _server_url() -> str:
    return os.environ.get("CITYHEALTH_DATABASE_URL") or os.environ.get(
        "CITYHEALTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _bulletin(url: str, month: str) -> tuple[float, dict[str, Any]]:
    """Seconds to build and render every edition, and the JSON edition parsed."""
    database = Database(url)
    try:
        started = time.perf_counter()
        async with database.transaction() as session:
            data = await build_bulletin(session, month)
        rendered = {edition: render(data, edition) for edition in Edition}
        elapsed = time.perf_counter() - started
        parsed: dict[str, Any] = json.loads(rendered[Edition.JSON])
        return elapsed, parsed
    finally:
        await database.dispose()


def _matches_expected(actual: dict[str, Any], scale: Decimal) -> str:
    path = bundled_scenario(SCENARIO)
    try:
        assert_matches_expected(actual, expected(json.loads(Path(path).read_text(encoding="utf-8")), scale))
    except AssertionError as exc:
        return f"no ({str(exc).splitlines()[0]})"
    return "yes"


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb(pid: int) -> float | None:
    """A running worker's peak resident set (VmHWM) with its prepare processes', in MB; None once it has gone."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
        children = (Path("/proc") / str(pid) / "task" / str(pid) / "children").read_text().split()
    except OSError:
        return None
    peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
    return peak + sum(_peak_rss_mb(int(child)) or 0.0 for child in children)


@dataclass
class Tracker:
    """The month's progress as the simulator reports it, and what the machine looked like meanwhile."""

    workers: list[subprocess.Popen[bytes]]
    started: float = field(default_factory=time.perf_counter)
    day: int = 0
    days: int = 0
    records: int = 0
    records_total: int = 0
    loads: list[float] = field(default_factory=list)
    worker_peaks_mb: dict[int, float] = field(default_factory=dict)
    worker_cpu_s: dict[int, float] = field(default_factory=dict)  # as last seen: a stopped worker's is gone

    def sample_workers(self) -> None:
        for worker in self.workers:
            peak = _peak_rss_mb(worker.pid)
            if peak is not None:
                self.worker_peaks_mb[worker.pid] = max(peak, self.worker_peaks_mb.get(worker.pid, 0.0))
                self.worker_cpu_s[worker.pid] = process_tree_cpu_s(worker.pid)

    def on_progress(self, phase: str, done: int, total: int) -> None:
        if phase == "records":
            self.records, self.records_total = done, total
            return
        self.day, self.days = done, total
        self.loads.append(os.getloadavg()[0])
        self.sample_workers()
        print(f"day {self.day}/{self.days} {self.line()}", file=sys.stderr, flush=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        server = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = ",".join(f"{peak:.0f}" for peak in self.worker_peaks_mb.values()) or "-"
        load = os.getloadavg()
        self.sample_workers()
        cpu = _cpu(resource.RUSAGE_SELF) + sum(self.worker_cpu_s.values())
        return (f"records_sent={self.records}/{self.records_total} elapsed_s={elapsed:.0f} "
                f"cpu_server_and_workers_s={cpu:.0f} cpu_ms_per_record={1000 * cpu / max(1, self.records):.3f} "
                f"records_per_s={self.records / elapsed if elapsed else 0:.0f} peak_rss_server_mb={server:.0f} "
                f"peak_rss_workers_mb={workers} load={load[0]:.2f},{load[1]:.2f},{load[2]:.2f}")

    def load_summary(self) -> str:
        if not self.loads:
            return "-"
        return f"{min(self.loads):.1f}/{sum(self.loads) / len(self.loads):.1f}/{max(self.loads):.1f}"


@contextlib.contextmanager
def _task_workers(count: int, url: str, keys: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes, each in a directory of its own; stopped (killed if they linger) and their
    directories removed however the block ends."""
    # The workers import this checkout's code, as this process does: they start in directories of their own,
    # where a relative PYTHONPATH (src:.) would find nothing and the installed package would run instead.
    path = os.pathsep.join([str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    environment = {**os.environ, "PYTHONPATH": path, "CITYHEALTH_DATABASE_URL": url, "CITYHEALTH_VAR_DIR": "var",
                   **{f"CITYHEALTH_{name.upper()}": key for name, key in keys.items()}}
    workers: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as directories:
        try:
            for n in range(count):
                directory = directories.enter_context(tempfile.TemporaryDirectory(prefix=f"cityhealth-worker-{n}-"))
                workers.append(subprocess.Popen(
                    [sys.executable, "-c", "from cityhealth.cli import main; main()", "worker", "--no-periodic"],
                    cwd=directory, env=environment, start_new_session=True))
            watching = threading.Event()
            watchdog = threading.Thread(target=_watch, args=(workers, watching), daemon=True)
            watchdog.start()
            try:
                yield workers
            finally:
                watching.set()
                watchdog.join()
        finally:
            _stop(workers)


def _watch(workers: list[subprocess.Popen[bytes]], done: threading.Event) -> None:
    """Interrupt the run as soon as a worker exits by itself: its jobs would wait for the stall timeout."""
    while not done.wait(1.0):
        for worker in workers:
            if worker.poll() is not None:
                print(f"worker {worker.pid} exited with {worker.returncode}: stopping the run", file=sys.stderr,
                      flush=True)
                os.kill(os.getpid(), signal.SIGINT)
                return


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + WORKER_STOP_S
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"worker {worker.pid} did not stop in {WORKER_STOP_S} s: killed", file=sys.stderr)
            worker.kill()
            worker.wait()


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends the run as Ctrl-C does, so that every cleanup below runs (Python's default exits at once)."""
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="0.01")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--task-workers", type=int, default=0,
                        help="`cityhealth worker` processes that run the bulk jobs (0: the server runs them)")
    args = parser.parse_args()
    _interrupt_on_sigterm()
    print(f"cores={os.cpu_count()} scale={args.scale} task_workers={args.task_workers} "
          f"load={','.join(f'{value:.2f}' for value in os.getloadavg())}", file=sys.stderr, flush=True)

    server = _server_url()
    name = f"ch_replay_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(server, name))
    tracker: Tracker | None = None
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            keys = {name: base64.urlsafe_b64encode(os.urandom(32)).decode() for name in SECRET_NAMES}
            settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=Path(var_dir),
                                server_worker_concurrency=0 if args.task_workers else 1,
                                **keys)  # type: ignore[arg-type]
            upgrade(settings)
            scenario = load_scenario(bundled_scenario(SCENARIO))
            started, database_before, own_before = time.perf_counter(), postgres_cpu_s(), _cpu(resource.RUSAGE_SELF)
            with _task_workers(args.task_workers, url, keys) as workers:
                tracker = Tracker(workers)
                result = simulate(create_app, settings, scenario, Decimal(args.scale), args.seed,
                                  tracker.on_progress)
                tracker.sample_workers()
            simulate_s = time.perf_counter() - started
            database_cpu = postgres_cpu_s() - database_before
            # The app has shut down: its worker processes and the body writer are reaped and counted as children.
            own, children = _cpu(resource.RUSAGE_SELF) - own_before, _cpu(resource.RUSAGE_CHILDREN)
            bulletin_s, bulletin = asyncio.run(_bulletin(url, scenario.month))
    except BaseException:
        if tracker is not None:
            print(f"stopped at day {tracker.day}/{tracker.days}: {tracker.line()}", file=sys.stderr, flush=True)
        raise
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
          f" cores_busy={sum(cpu.values()) / simulate_s:.2f}/{os.cpu_count()}"
          f" cpu_ms_per_record={1000 * sum(cpu.values()) / result.uploaded if result.uploaded else 0:.3f}")
    # Peak RSS: the server (this process: API, simulator and bookings) and each task worker; load: the 1-minute
    # load average sampled once a day, min/mean/max.
    workers = ",".join(f"{peak:.0f}" for peak in tracker.worker_peaks_mb.values()) or "-"
    print(f"peak_rss_server_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
          f"peak_rss_workers_mb={workers} load_1m={tracker.load_summary()} "
          f"matches_expected={_matches_expected(bulletin, Decimal(args.scale))}")
    print(f"scale={args.scale} simulate_s={simulate_s:.1f} records_per_s={result.records_per_s:.0f} "
          f"bulletin_s={bulletin_s:.3f}")


if __name__ == "__main__":
    main()
