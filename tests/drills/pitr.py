"""The point-in-time restore drill (PostgreSQL): base backup, WAL archive, restore to a moment mid-month.

A throwaway cluster archives its WAL; a base backup is taken of the migrated, empty platform; `cityhealth
simulate` then drives a month through it. At a moment in the middle the simulator is paused (SIGSTOP: every
write it had committed is in, none is half sent), every table's rows are digested and the server's clock
read; the simulator resumes and writes on. The backup is then restored into a new cluster, replaying the
archive up to that moment (recovery_target_time), and the restored database must hold exactly the digested
rows, pass `cityhealth audit verify`, and have its collection counters equal a recount of its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from cityhealth.db.admin import create_database, execute_on_server
from cityhealth.db.engine import Database
from tests.drills.checks import audit_verifies, cli, recount, table_digests
from tests.drills.cluster import Cluster, workspace


@dataclass
class RestoreResult:
    restore_ok: bool
    rows_at_moment: int
    rows_at_end: int
    tables_differing: list[str]
    audit_ok: bool
    audit_line: str
    counters_ok: bool
    records: int
    replay_s: float

    def line(self) -> str:
        return (f"pitr: restore_ok={int(self.restore_ok)} rows_at_moment={self.rows_at_moment} "
                f"rows_at_end={self.rows_at_end} tables_differing={len(self.tables_differing)} "
                f"audit_ok={int(self.audit_ok)} counters_ok={int(self.counters_ok)} records={self.records} "
                f"replay_s={self.replay_s:.1f}")


async def _digests(url: str) -> dict[str, tuple[int, str]]:
    database = Database(url)
    try:
        return await table_digests(database)
    finally:
        await database.dispose()


async def _now(url: str) -> str:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return str((await connection.execute(text("SELECT clock_timestamp()::text"))).scalar_one())
    finally:
        await database.dispose()


async def _wait_for_records(url: str, at_least: int, timeout_s: float) -> None:
    database = Database(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            async with database.engine.connect() as connection:
                found = (await connection.execute(text("SELECT count(*) FROM collection_records"))).scalar_one()
            if found >= at_least:
                return
            await asyncio.sleep(1)
    finally:
        await database.dispose()
    raise AssertionError(f"the simulator stored fewer than {at_least} records in {timeout_s:.0f} s")


def _simulator(url: str, var_dir: Path, scale: str | None) -> subprocess.Popen[bytes]:
    """`cityhealth simulate` at `scale`; None: the quick writer of real-time uploads (pitr_writer.py)."""
    environment = {**os.environ, "CITYHEALTH_DATABASE_URL": url, "CITYHEALTH_VAR_DIR": str(var_dir)}
    command = (["-m", "cityhealth.cli", "simulate", "--scale", scale, "--seed", "7"] if scale is not None
               else ["-m", "tests.drills.pitr_writer", url, str(var_dir)])
    return subprocess.Popen(  # noqa: S603 - our own CLI or writer
        [sys.executable, *command], cwd=Path(__file__).resolve().parents[2],
        env=environment, stdout=subprocess.DEVNULL, stderr=(var_dir.parent / "simulate.log").open("wb"),
        start_new_session=True,  # its own process group: paused, resumed and killed with its helper processes
    )


def _signal(process: subprocess.Popen[bytes], signal_number: int) -> None:
    os.killpg(process.pid, signal_number)


async def run(*, first_records: int = 300, write_after_s: float = 20.0, scale: str | None = "0.002",
              keep: bool = False) -> RestoreResult:
    """`scale` None: real-time uploads instead of the simulator, which takes a minute or more to start writing."""
    root = workspace("drill-pitr-")
    origin = Cluster(root, "origin", archive=root / "archive")
    restored: Cluster | None = None
    simulator: subprocess.Popen[bytes] | None = None
    try:
        origin.init()
        origin.start()
        url = await create_database(origin.url, "drill")
        migrated = cli(url, "db", "upgrade")
        if migrated.returncode != 0:
            raise AssertionError(f"db upgrade failed: {migrated.stderr[-500:]}")
        origin.base_backup(root / "base")
        (root / "sim").mkdir()
        simulator = _simulator(url, root / "sim" / "var", scale)
        await _wait_for_records(url, first_records, timeout_s=600)
        _signal(simulator, signal.SIGSTOP)  # the moment: nothing written while the rows are digested
        await asyncio.sleep(1.0)  # a COMMIT already on the wire is done by now
        at_moment = await _digests(url)
        moment = await _now(url)
        await asyncio.sleep(1.0)  # what commits next is clearly after the moment
        _signal(simulator, signal.SIGCONT)
        await asyncio.sleep(write_after_s)
        _signal(simulator, signal.SIGKILL)
        simulator.wait()
        at_end = await _digests(url)
        await execute_on_server(origin.url, "SELECT pg_switch_wal()")
        await asyncio.sleep(1.0)  # the archiver copies the last segment
        origin.stop()
        restored = origin.restored(root / "base", "restored", moment)
        started = time.monotonic()
        restored.start()
        restored_url = restored.database_url("drill")
        database = Database(restored_url)
        try:
            for _ in range(600):  # promoted once it reached the target
                async with database.engine.connect() as connection:
                    if not (await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar_one():
                        break
                await asyncio.sleep(0.1)
            replay_s = time.monotonic() - started
            after = await table_digests(database)
            counts = await recount(database)
        finally:
            await database.dispose()
        audit_ok, audit_line = audit_verifies(restored_url)
        differing = sorted(name for name in set(at_moment) | set(after) if at_moment.get(name) != after.get(name))
        rows_moment = sum(count for count, _ in at_moment.values())
        rows_end = sum(count for count, _ in at_end.values())
        ok = not differing and audit_ok and counts.ok and rows_end > rows_moment and counts.records > 0
        return RestoreResult(ok, rows_moment, rows_end, differing, audit_ok, audit_line, counts.ok,
                             counts.records, replay_s)
    finally:
        if simulator is not None:
            with contextlib.suppress(ProcessLookupError):
                _signal(simulator, signal.SIGKILL)
            simulator.wait()
        for cluster in (origin, restored):
            if cluster is not None:
                cluster.stop("immediate")
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run(keep="--keep" in sys.argv))
    print(outcome.line())  # noqa: T201
    if not outcome.restore_ok:
        print(f"differing tables: {outcome.tables_differing}; audit: {outcome.audit_line}")  # noqa: T201
        sys.exit(1)
