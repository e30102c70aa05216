"""CPU and memory of a served benchmark's processes (a server, its task workers and their children), from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def server_pids(roots: list[int]) -> list[int]:
    """The server and worker processes and their children (uvicorn --workers N, a worker's prepare processes)."""
    pids = list(roots)
    for root in roots:
        try:
            for task in Path(f"/proc/{root}/task").iterdir():
                children = task / "children"
                if children.exists():
                    pids.extend(int(pid) for pid in children.read_text().split())
        except FileNotFoundError:
            continue
    return pids


def rss_mb(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_by_process(roots: list[int]) -> dict[int, float]:
    """CPU seconds (user + system, and the reaped children's) used so far by each server or worker process."""
    used = {}
    for pid in server_pids(roots):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        # utime, stime, and the reaped children's (prepare processes that ended)
        used[pid] = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return used


def cpu_s(roots: list[int]) -> float:
    """CPU seconds used so far by the server and worker processes (children included)."""
    return sum(cpu_by_process(roots).values())


def cpu_shares(roots: list[int], before: dict[int, float], records: int) -> str:
    """Each process's CPU per record since `before` (a prepare process started meanwhile: all of its CPU)."""
    names = {pid: "server" for pid in roots[:1]} | {pid: "worker" for pid in roots[1:]}
    after = cpu_by_process(roots)
    return ", ".join(
        f"{names.get(pid, 'prepare')} {(used - before.get(pid, 0.0)) / records * 1e6:.1f}"
        for pid, used in after.items()
        if used - before.get(pid, 0.0) >= 0.05
    )


@dataclass
class Memory:
    """Peak RSS of the server processes, sampled while they work (VmHWM per process, and the summed RSS)."""

    roots: list[int]
    peak_sum_mb: float = 0.0
    hwm: dict[int, float] = field(default_factory=dict)

    def sample(self) -> None:
        pids = server_pids(self.roots)
        self.peak_sum_mb = max(self.peak_sum_mb, sum(rss_mb(pid, "VmRSS") for pid in pids))
        for pid in pids:
            self.hwm[pid] = max(self.hwm.get(pid, 0.0), rss_mb(pid, "VmHWM"))

    @property
    def peak_mb(self) -> float:
        return max(self.peak_sum_mb, max(self.hwm.values(), default=0.0))
