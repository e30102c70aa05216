"""What the benchmarks measure from /proc: CPU seconds of a process tree and of a database's backends."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from cityhealth.db.admin import backend_pids, database_on


def _stat(pid: int) -> list[str] | None:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants still running (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        stats[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += stats.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


async def database_cpu_s(server_url: str, name: str) -> float:
    """CPU seconds of the PostgreSQL backends serving database `name` (same host; they live for the run)."""
    return sum(process_tree_cpu_s(pid) for pid in await backend_pids(server_url, name))


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every PostgreSQL process on this host, exited backends included.

    A backend's CPU passes to the postmaster's children's time when it exits, so the difference of two readings
    is what the server spent between them, whichever connections came and went.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = _stat(int(entry.name)) if name in ("postgres", "postmaster") else None
        if fields is not None:
            total += sum(int(value) for value in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return total


class CommitProbe:
    """The storage's own floor under a load: a one-row insert committed every `every_s` on a connection of its
    own, to the server's maintenance database (not the measured one, whose backends' CPU is counted), each
    commit waiting for its WAL flush as the platform's do. A stall of the disk's flush shows here as in every
    transaction of the platform at the same moment; a latency tail the probe does not share is the platform's.
    """

    def __init__(self, server_url: str, every_s: float = 0.005) -> None:
        self.url = database_on(server_url, "postgres")
        self.every_s = every_s
        self.latencies: list[float] = []  # each commit's seconds
        self._table = f"bench_commit_probe_{uuid.uuid4().hex[:8]}"
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CommitProbe:
        import asyncpg  # type: ignore[import-untyped]

        self._connection = await asyncpg.connect(self.url)
        await self._connection.execute(f"CREATE TABLE {self._table} (n bigint)")
        self._task = asyncio.create_task(self._probe())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._connection.execute(f"DROP TABLE IF EXISTS {self._table}")
        finally:
            await self._connection.close()

    async def _probe(self) -> None:
        n = 0
        statement = f"INSERT INTO {self._table} VALUES ($1)"  # noqa: S608 - our own name
        while True:
            began = time.perf_counter()
            await self._connection.execute(statement, n)  # its own transaction: committed, flushed
            took = time.perf_counter() - began
            self.latencies.append(took)
            n += 1
            await asyncio.sleep(max(0.0, self.every_s - took))

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        if not ordered:
            return "commit probe: no commit"

        def at(share: float) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

        slow = [took for took in reversed(ordered) if took > 0.02]
        longest = ", ".join(f"{took * 1000:.0f}" for took in slow[:5])
        return (f"commit probe (one-row commit every {self.every_s * 1000:.0f} ms, own connection): {len(ordered)} "
                f"commits, p50={at(0.5):.2f} ms p99={at(0.99):.2f} ms max={ordered[-1] * 1000:.1f} ms; "
                f"{len(slow)} over 20 ms" + (f" (longest {longest} ms)" if slow else ""))
