"""A bulk chunk's database work at the bulk job's lower CPU priority, where the database runs on this machine.

A chunk's transaction keeps a PostgreSQL backend busy for ~10 µs per record (the existence probe, the COPY,
the counters): as much CPU as the worker process spends on it, and at the same priority as the backends that
answer real-time batches, so on a machine with the database on it the bulk job's backend took a core's share
from the requests. For the chunk's transaction its backend runs at the prepare processes' priority
(`worker_nice`) and is put back afterwards, so a pooled connection that later serves a request (jobs run in
the server process on SQLite, or with `server_worker_concurrency`) is not left behind.

Only where that is possible and safe: the database on this machine (a loopback address or a Unix socket),
the backend's process a PostgreSQL process, and this process allowed to raise a priority back (root, or
CAP_SYS_NICE / RLIMIT_NICE); anywhere else nothing changes. The unit's lock is held by that transaction:
a niced backend is preempted only while processes at the requests' priority want every core, when the
requests are already short of CPU.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.driver import pg_driver

_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
_backends: dict[int, bool] = {}  # backend pid -> whether it is a PostgreSQL process of this machine


def may_lower(database_url: str, nice: int) -> bool:
    """Whether chunks' backends can be niced here, and put back (see above)."""
    if nice <= 0 or not database_url.startswith("postgres"):
        return False
    url = make_url(database_url)
    host = url.host or str(url.query.get("host", ""))
    if host not in _LOCAL_HOSTS and not host.startswith("/"):
        return False
    # Raising a priority back needs privilege (RLIMIT_NICE allows down to 20 - its soft limit).
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20


def _is_local_backend(pid: int) -> bool:
    if pid not in _backends:
        try:
            _backends[pid] = Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            _backends[pid] = False
    return _backends[pid]


@contextlib.asynccontextmanager
async def lowered(session: AsyncSession, nice: int | None) -> AsyncIterator[None]:
    """The session's PostgreSQL backend at `nice` for the block (None: unchanged)."""
    pid = (await pg_driver(session)).get_server_pid() if nice is not None else 0
    if nice is None or not pid or not _is_local_backend(pid):
        yield
        return
    try:
        before = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, max(nice, before))
    except OSError:  # the backend ended, or the OS refused: run as it is
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, before)
