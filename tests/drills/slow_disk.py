"""The slow-disk drill: the database on a filesystem that holds every fsync for a set delay
(tests/drills/slowfs.py) — SQLite's file (the embedded default, with the bulk-upload spool in its table), or a
throwaway PostgreSQL cluster's data directory — under the soak's mixed load on the platform's processes:
real-time and bulk uploads, job reads, the quality report and readiness. One phase with no delay, then one with
the delay. Guarantees: no error in either phase (every answer 200 or 202, every bulk job completed), every path
answered in the slow phase, nothing lost or stored without its answer, counters equal a recount, the audit chain
verifies; the figures are each path's p99 and the records taken per second at normal and at slow disk.

A probe commit on the same disk (SQLite, WAL, `synchronous=FULL` as the platform's) before each phase shows the
disk really was slow: the drill fails if the slow phase's commit did not wait the delay. Needs root and FUSE
(`unavailable` says why not; scripts/fuse-deps installs libfuse3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes.util
import importlib.util
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from cityhealth.db.admin import create_database
from cityhealth.db.engine import SQLITE_PRAGMAS
from tests.drills.checks import settled
from tests.drills.cluster import Cluster, workspace
from tests.drills.platform import Platform, platform
from tests.drills.soak import Load, p99, served

PATHS = ("realtime", "bulk", "job_read", "quality", "readyz")
SHORT = {"phase_s": 10.0}


def unavailable() -> str | None:
    """Why this machine cannot mount the slow disk, or None: the drill is skipped with that reason."""
    if os.geteuid() != 0:
        return "needs root to mount its FUSE filesystem"
    if not Path("/dev/fuse").exists():
        return "the kernel offers no /dev/fuse"
    if ctypes.util.find_library("fuse3") is None and ctypes.util.find_library("fuse") is None:
        return "no libfuse (scripts/fuse-deps installs Debian's fuse3)"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed (make install)"
    return None


class SlowDisk:
    """The mounted filesystem as the drill sees it: where it is, and the delay it holds each fsync for."""

    def __init__(self, mountpoint: Path, delay_file: Path) -> None:
        self.mountpoint = mountpoint
        self._delay_file = delay_file

    def hold_fsync(self, milliseconds: float) -> None:
        """From the next fsync on, hold each for `milliseconds` before passing it on to the real disk."""
        scratch = self._delay_file.with_suffix(".new")
        scratch.write_text(f"{milliseconds}")
        scratch.replace(self._delay_file)  # whole: an fsync never reads half a number

    def probe_commit_ms(self, commits: int = 5) -> float:
        """The median time of a commit on this disk (SQLite with the platform's own pragmas: WAL, `synchronous=FULL`):
        what the disk makes each write transaction wait, with no load on the database."""
        with contextlib.closing(sqlite3.connect(self.mountpoint / "probe.sqlite", isolation_level=None)) as probe:
            for pragma in SQLITE_PRAGMAS:
                probe.execute(f"PRAGMA {pragma}")
            probe.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
            took = []
            for n in range(commits):
                started = time.perf_counter()
                probe.execute("INSERT INTO probe VALUES (?)", (n,))  # its own transaction, committed
                took.append(time.perf_counter() - started)
        return 1000 * statistics.median(took)


@contextlib.contextmanager
def slow_disk(root: Path, mountpoint: Path) -> Iterator[SlowDisk]:
    """The slow filesystem mounted at `mountpoint` (made empty) over `root`/backing, holding no fsync yet;
    unmounted on leaving (every process using it must have closed its files by then)."""
    backing, delay_file = root / "backing", root / "fsync-delay-ms"
    backing.mkdir(parents=True)
    mountpoint.mkdir()
    delay_file.write_text("0")
    log = root / "slowfs.log"
    server = subprocess.Popen(  # noqa: S603 - our own filesystem program
        [sys.executable, "-m", "tests.drills.slowfs", str(backing), str(mountpoint), str(delay_file)],
        stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mountpoint):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the slow filesystem did not mount: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield SlowDisk(mountpoint, delay_file)
    finally:
        # A process that has just ended may hold it a moment longer (PostgreSQL's postmaster has its data
        # directory as its working directory until it is gone): retry, then detach it lazily.
        deadline = time.monotonic() + 10
        while os.path.ismount(mountpoint) and subprocess.run(["umount", str(mountpoint)],  # noqa: S603, S607
                                                             capture_output=True, check=False).returncode:
            if time.monotonic() > deadline:
                subprocess.run(["umount", "-l", str(mountpoint)], check=False)  # noqa: S603, S607
                break
            time.sleep(0.2)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclass
class Phase:
    name: str
    fsync_delay_ms: float
    probe_commit_ms: float
    duration_s: float
    requests: int
    errors: int
    acknowledged: int
    p99_ms: dict[str, float]

    @property
    def records_per_s(self) -> float:
        return self.acknowledged / self.duration_s

    def figures(self) -> str:
        p99s = " ".join(f"{path}={self.p99_ms.get(path, 0):.0f}" for path in PATHS)
        return (f"{self.name}: fsync_delay_ms={self.fsync_delay_ms:.0f} probe_commit_ms={self.probe_commit_ms:.1f} "
                f"requests={self.requests} errors={self.errors} records_per_s={self.records_per_s:.0f} "
                f"p99_ms({p99s})")


@dataclass
class SlowDiskResult:
    backend: str
    phases: list[Phase]
    stored: int
    counters_ok: bool
    audit_ok: bool

    @property
    def acknowledged(self) -> int:
        return sum(phase.acknowledged for phase in self.phases)

    @property
    def lost(self) -> int:
        return max(0, self.acknowledged - self.stored)

    @property
    def twice(self) -> int:
        """Records stored beyond those acknowledged: a batch taken twice (or taken though its answer was not 200)."""
        return max(0, self.stored - self.acknowledged)

    @property
    def ok(self) -> bool:
        normal, slow = self.phases
        return (not normal.errors and not slow.errors and set(PATHS) <= set(slow.p99_ms)
                and slow.probe_commit_ms >= slow.fsync_delay_ms and self.stored == self.acknowledged
                and self.counters_ok and self.audit_ok)

    def line(self) -> str:
        return (f"slow_disk: backend={self.backend} ok={int(self.ok)} acknowledged={self.acknowledged} "
                f"stored={self.stored} lost={self.lost} twice={self.twice} "
                f"counters_ok={int(self.counters_ok)} audit_ok={int(self.audit_ok)} | "
                + " | ".join(phase.figures() for phase in self.phases))


async def _phase(http: httpx.AsyncClient, site: Platform, disk: SlowDisk, name: str, delay_ms: float,
                 duration_s: float) -> Phase:
    disk.hold_fsync(delay_ms)
    probe = await asyncio.to_thread(disk.probe_commit_ms)
    started = time.monotonic()
    load = Load(http, site, started + duration_s, tag=f"{name}-")
    await asyncio.gather(*load.start())
    return Phase(name, delay_ms, probe, time.monotonic() - started, load.requests, load.errors, load.acknowledged,
                 {path: p99([took for _, took in timings]) for path, timings in load.latencies.items()})


async def run(*, backend: str = "sqlite", phase_s: float = 60.0, fsync_delay_ms: float = 50.0) -> SlowDiskResult:
    """`backend` "sqlite" or "postgresql"."""
    reason = unavailable()
    if reason:
        raise RuntimeError(f"the slow-disk drill {reason}")
    root = workspace("drill-slowdisk-")
    cluster = Cluster(root, "data") if backend == "postgresql" else None
    try:
        with slow_disk(root / "fs", root / "data") as disk:
            try:
                if cluster is None:
                    url = f"sqlite:///{disk.mountpoint / 'cityhealth.sqlite'}"
                else:  # its data directory is the mount
                    cluster.init()
                    cluster.start()
                    url = await create_database(cluster.url, "drill")
                async with platform(url, root / "var", server_worker_concurrency=0) as site:
                    pass
                async with served(site, root) as (base_url, _), httpx.AsyncClient(base_url=base_url,
                                                                                    timeout=60) as http:
                    phases = [await _phase(http, site, disk, name, delay, phase_s)
                              for name, delay in (("normal", 0.0), ("slow", fsync_delay_ms))]
                stored, counters_ok, audit_ok = await settled(url)
            finally:
                if cluster is not None:
                    cluster.stop("fast")
        return SlowDiskResult(backend, phases, stored, counters_ok, audit_ok)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--short", action="store_true", help=f"phases of {SHORT['phase_s']:.0f} s instead of 60")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parsed = parser.parse_args()
    outcome = asyncio.run(run(backend=parsed.backend, **SHORT) if parsed.short else run(backend=parsed.backend))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
