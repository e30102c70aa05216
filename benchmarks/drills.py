"""Reliability drills (docs/reliability.md): what the platform survives, shown on this machine.

Each drill prints its figures on a line of its own and the run fails (exit 1) when any invariant breaks:

- pitr: a base backup and the WAL archive of a throwaway PostgreSQL cluster restored to a moment in the middle
  of a simulated month — the same rows as at that moment, `audit verify` passes, counters equal a recount;
- disk_full: the database (and the bulk-upload spool in it) on a small tmpfs; a bulk upload that does not fit
  is refused 507 with nothing left behind, and the platform goes on serving (needs root: it mounts);
- slow_disk: the database (SQLite; in the full run PostgreSQL's data directory too) on a FUSE filesystem that
  holds each fsync, under mixed load, at normal and at slow disk: no error, nothing lost, reads answered, the
  p99s and the write rate of both (needs root and libfuse3);
- db_restart: PostgreSQL stopped and started, then killed and started, under uploads and reads;
- crash_worker / crash_api / crash_booking: `cityhealth worker` SIGKILLed mid-job, `cityhealth serve` SIGKILLed
  during real-time uploads and during a booking race (bookings, holds confirmed, holds left for the sweeper to
  release; on SQLite and, in the full run, on PostgreSQL), at random moments, N times each;
- soak: mixed load on serve and worker processes for a set duration — uploads, bookings and cancellations, and
  the pages staff read signed in (memory, p99, errors, lost records, bookings against the database).

PostgreSQL drills start clusters of their own on free loopback ports (scripts/with-postgres's way), never
the shared server. `--short` is the version `make test` runs. The last line:
crashes=N lost=0 duplicated=0 oversold=0 restore_ok=1 soak_rss_growth_pct=X
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.drills import crash_api, crash_booking, crash_worker, db_restart, disk_full, pitr, slow_disk, soak


def _say(line: str) -> None:
    print(line, flush=True)


async def main(arguments: argparse.Namespace) -> int:
    failed: list[str] = []
    started = time.monotonic()
    _say(f"machine: {os.cpu_count()} cores; drills: crashes={arguments.crashes} soak_s={arguments.soak_s:.0f}")

    restore = await (pitr.run(first_records=200, write_after_s=3, scale=None) if arguments.short else pitr.run())
    _say(restore.line())
    if not restore.restore_ok:
        failed.append("pitr")

    if os.geteuid() == 0:
        full = await disk_full.run()
        _say(full.line())
        if not full.ok:
            failed.append("disk_full")
    else:
        _say("disk_full: skipped (needs root to mount its tmpfs)")

    slow_lost = slow_twice = 0
    if (reason := slow_disk.unavailable()) is None:
        for backend in ("sqlite",) if arguments.short else ("sqlite", "postgresql"):
            slow = await (slow_disk.run(backend=backend, **slow_disk.SHORT) if arguments.short
                          else slow_disk.run(backend=backend))
            _say(slow.line())
            slow_lost, slow_twice = slow_lost + slow.lost, slow_twice + slow.twice
            if not slow.ok:
                failed.append(f"slow_disk[{backend}]")
    else:
        _say(f"slow_disk: skipped ({reason})")

    restart = await (db_restart.run(**db_restart.SHORT) if arguments.short else db_restart.run())
    _say(restart.line())
    if not restart.ok:
        failed.append("db_restart")

    worker = await crash_worker.run(crashes=arguments.crashes)
    _say(worker.line())
    api = await crash_api.run(crashes=arguments.crashes)
    _say(api.line())
    bookings = [await crash_booking.run(crashes=arguments.crashes, backend=backend)
                for backend in (("sqlite",) if arguments.short else ("sqlite", "postgresql"))]
    for booking in bookings:
        _say(booking.line())
    failed += [name for name, ok in (("crash_worker", worker.ok), ("crash_api", api.ok),
                                     *((f"crash_booking[{b.backend}]", b.ok) for b in bookings)) if not ok]

    soaked = await soak.run(duration_s=arguments.soak_s, judge_latency=not arguments.short)
    _say(soaked.line())
    if not soaked.ok:
        failed.append("soak")

    _say(f"drills: {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}")
    lost = worker.lost + api.lost + soaked.lost + slow_lost
    _say(f"crashes={worker.crashes + api.crashes + sum(b.crashes for b in bookings)} lost={lost} "
         f"duplicated={worker.duplicated + api.duplicated + sum(b.doubled for b in bookings) + slow_twice} "
         f"oversold={sum(b.oversold for b in bookings) + soaked.oversold} restore_ok={int(restore.restore_ok)} "
         f"soak_rss_growth_pct={soaked.rss_growth_pct:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--short", action="store_true", help="the short version: 2 crashes each, a 30 s soak")
    parser.add_argument("--crashes", type=int, default=20, help="SIGKILLs per crash drill (default 20)")
    parser.add_argument("--soak-minutes", type=float, default=20.0, help="the soak's duration (default 20)")
    parsed = parser.parse_args()
    parsed.soak_s = 30.0 if parsed.short else parsed.soak_minutes * 60
    if parsed.short:
        parsed.crashes = min(parsed.crashes, 2)
    sys.exit(asyncio.run(main(parsed)))
