"""What the benchmarks measure from /proc: CPU seconds of a process tree and of a database's backends."""

from __future__ import annotations

import os
from pathlib import Path

from cityhealth.db.admin import backend_pids


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
