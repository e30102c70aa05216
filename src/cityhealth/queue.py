"""Background work as tasks: on PostgreSQL a procrastinate job queue shared by every worker, on SQLite the
same task functions run in the server's process.

The rooms register their task functions here (`@task`, `@periodic`) and defer them with `defer(session, …)`
inside the transaction that writes the row the task works on: on PostgreSQL the queue's row is inserted by
procrastinate's own SQL function in that very transaction, so a rolled-back row leaves no task and a
committed one always has its task. This module imports no room (the layers contract): `app.py` and `cli.py`
import the rooms' task modules, which registers their functions before a runner is built. The PostgreSQL
workers that take the queued tasks are `cityhealth.worker`.

docs/decisions/job-queue.md says why procrastinate, how the workers share the jobs, and how SQLite works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.db.failure_kinds import is_transient

logger = logging.getLogger("cityhealth.queue")
QUEUE_NAME = "cityhealth"  # the rooms' tasks (bulk jobs)
# The periodic work and the queue's housekeeping: a queue of their own, taken by a worker's second loop, so
# that a hold sweep is never stuck behind a bulk job that takes minutes.
PERIODIC_QUEUE = "cityhealth-periodic"
_PENDING = "cityhealth.queue.pending"
# A task the database interrupted (Interrupted) is run again by either runner after a pause that doubles from
# RETRY_PAUSE_S up to MAX_RETRY_PAUSE_S, at most MAX_INTERRUPTIONS times in a row: about an hour of outage. Then it
# is given up, and its rows say what is left (recovered at the next start, or by an operator's rerun).
RETRY_PAUSE_S = 2.0
MAX_RETRY_PAUSE_S = 300.0
MAX_INTERRUPTIONS = 20
_T = TypeVar("_T")


@dataclass
class Runtime:
    """What task functions run with in one process, and the rooms' per-process caches (`resource`)."""

    settings: Settings
    database: Database
    clock: Clock
    resources: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    def resource(self, key: str, make: Callable[[], _T]) -> _T:
        """The process's one `key` (a room's cache or pool), made on first use."""
        if key not in self.resources:
            self.resources[key] = make()
        value: _T = self.resources[key]
        return value

    async def close(self) -> None:
        for close in reversed(self.closers):
            result = close()
            if result is not None:
                await result
        self.closers.clear()


TaskFunction = Callable[..., Awaitable[None]]  # (runtime, **JSON arguments)
Recoverer = Callable[[Runtime], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    function: TaskFunction
    lock_by: str | None  # the argument whose value names what only one worker at a time may work on
    recover: Recoverer | None = None  # SQLite: the arguments of the tasks whose rows are still unfinished


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    function: Callable[[Runtime], Awaitable[object]]
    every_s: int


TASKS: dict[str, TaskSpec] = {}
PERIODIC: dict[str, PeriodicSpec] = {}


def task(name: str, *, lock_by: str | None = None) -> Callable[[TaskFunction], TaskFunction]:
    """Register a task function `(runtime, **arguments)`; the arguments travel as JSON."""

    def register(function: TaskFunction) -> TaskFunction:
        TASKS[name] = TaskSpec(name, function, lock_by)
        return function

    return register


def recover(name: str) -> Callable[[Recoverer], Recoverer]:
    """Register how the in-process runner (SQLite) finds a task's unfinished work when the server starts."""

    def register(function: Recoverer) -> Recoverer:
        spec = TASKS[name]
        TASKS[name] = TaskSpec(spec.name, spec.function, spec.lock_by, function)
        return function

    return register


PeriodicFunction = Callable[[Runtime], Awaitable[_T]]


def periodic(name: str, *, every_s: int) -> Callable[[PeriodicFunction[_T]], PeriodicFunction[_T]]:
    """Register work run every `every_s` seconds (by one worker of all, on PostgreSQL)."""
    cron_line(every_s)  # refuses a period a cron line cannot say

    def register(function: PeriodicFunction[_T]) -> PeriodicFunction[_T]:
        PERIODIC[name] = PeriodicSpec(name, function, every_s)
        return function

    return register


class Interrupted(Exception):
    """A task's database failed under it (connection lost, server restarting, a deadlock's or a serialization
    conflict's victim): the work did not fail, and running the task again resumes it from its rows. Both runners
    run it again after `retry_pause`: the in-process one itself, procrastinate by the tasks' retry strategy."""


def retry_pause(interruptions: int) -> float | None:
    """The pause before a task's next run after its `interruptions`-th interruption in a row (1 for the first), or
    None once it has been interrupted more than MAX_INTERRUPTIONS times: the one rule of both runners."""
    if interruptions > MAX_INTERRUPTIONS:
        return None
    return min(RETRY_PAUSE_S * (1 << (interruptions - 1)), MAX_RETRY_PAUSE_S)


async def run_task(spec: TaskSpec, runtime: Runtime, arguments: dict[str, Any]) -> None:
    """One run of a task, by either runner: a failure of the database rather than of the work is `Interrupted`."""
    try:
        await spec.function(runtime, **arguments)
    except Exception as exc:
        if is_transient(exc):
            raise Interrupted(f"task {spec.name} interrupted by the database ({type(exc).__name__})") from exc
        raise


def lock_of(spec: TaskSpec, arguments: dict[str, Any]) -> str | None:
    return None if spec.lock_by is None else f"{spec.name}:{arguments[spec.lock_by]}"


async def defer(session: AsyncSession, name: str, **arguments: Any) -> None:
    """Queue a task in the caller's transaction: it exists if, and only if, that transaction commits."""
    spec = TASKS[name]
    payload = json.dumps(arguments)
    bind = session.sync_session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(
            text(
                "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), "
                "NULL)::procrastinate_job_to_defer_v1])"
            ),
            {"queue": QUEUE_NAME, "task": name, "lock": lock_of(spec, arguments), "args": payload},
        )
        return
    if spec.recover is None:
        # In-process, a task lives only in memory until it runs: its rows must say what is left to do.
        raise RuntimeError(f"task {name} has no `recover`: on SQLite it would be lost with its process")
    runner = _local_runners.get(bind if isinstance(bind, Engine) else bind.engine)
    if runner is None:
        return  # no server runs tasks for this database now: its next start finds the row (`recover`)
    sync = session.sync_session
    if _PENDING not in sync.info:
        sync.info[_PENDING] = []
        event.listen(sync, "after_commit", _after_commit)
        event.listen(sync, "after_rollback", _after_rollback)
    sync.info[_PENDING].append((runner, name, json.loads(payload)))


def _after_commit(sync: Session) -> None:
    for runner, name, arguments in sync.info.pop(_PENDING, []):
        runner.submit(name, arguments)
    sync.info[_PENDING] = []


def _after_rollback(sync: Session) -> None:
    sync.info[_PENDING] = []


_local_runners: weakref.WeakKeyDictionary[Engine, LocalRunner] = weakref.WeakKeyDictionary()


class LocalRunner:
    """Runs the task functions in this process's event loop (SQLite, where one process writes at a time).

    A task deferred in a committed transaction starts after the commit; one per lock at a time (deferred
    again while it runs, it runs again afterwards, as a queue would). On start, every task's unfinished work
    is found from its rows (`recover`), so a restart loses nothing. Periodic work runs only when asked (the
    server on the system clock): a simulated clock is moved by whoever drives it, who calls the work itself.
    """

    def __init__(self, runtime: Runtime, *, run_periodic: bool) -> None:
        self.runtime = runtime
        self.run_periodic = run_periodic
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: dict[str, tuple[str, dict[str, Any]]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()  # interrupted tasks waiting out their pause
        self._interruptions: dict[str, int] = {}  # by task key: interruptions in a row

    async def start(self) -> None:
        _local_runners[self.runtime.database.engine.sync_engine] = self
        for spec in TASKS.values():
            if spec.recover is not None:
                for arguments in await spec.recover(self.runtime):
                    self.submit(spec.name, arguments)
        if self.run_periodic:
            for every in PERIODIC.values():
                self._loops.append(asyncio.create_task(self._every(every), name=f"periodic-{every.name}"))

    def submit(self, name: str, arguments: dict[str, Any]) -> None:
        spec = TASKS[name]
        key = lock_of(spec, arguments) or f"{name}:{json.dumps(arguments, sort_keys=True)}"
        if key in self._running:
            self._again[key] = (name, arguments)
            return
        self._running[key] = asyncio.create_task(self._run(key, spec, arguments), name=f"task-{key}")

    async def _run(self, key: str, spec: TaskSpec, arguments: dict[str, Any]) -> None:
        try:
            await run_task(spec, self.runtime, arguments)
            self._interruptions.pop(key, None)
        except Interrupted as interrupted:
            count = self._interruptions[key] = self._interruptions.get(key, 0) + 1
            pause = retry_pause(count)
            if pause is None:
                del self._interruptions[key]
                logger.error("%s %d times in a row; given up until the next start", interrupted, count,
                             extra={"task": spec.name})
            else:
                logger.warning("%s; running it again in %.0f s", interrupted, pause, extra={"task": spec.name})
                self._retry_later(spec.name, arguments, pause)
        except Exception:  # recorded by the task on its own rows; the runner goes on with the others
            self._interruptions.pop(key, None)
            logger.exception("task failed", extra={"task": spec.name})
        finally:
            del self._running[key]
            again = self._again.pop(key, None)
            if again is not None:
                self.submit(*again)

    def _retry_later(self, name: str, arguments: dict[str, Any], pause: float) -> None:
        async def later() -> None:
            await asyncio.sleep(pause)
            self.submit(name, arguments)

        retry = asyncio.create_task(later(), name=f"retry-{name}")
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    async def _every(self, spec: PeriodicSpec) -> None:
        while True:
            try:
                await spec.function(self.runtime)
            except Exception:  # a failed round must not end the loop; the next one retries
                logger.exception("periodic task failed", extra={"task": spec.name})
            await asyncio.sleep(spec.every_s)

    async def idle(self) -> None:
        """Until no task runs or waits out an interruption's pause to run again (tests)."""
        while self._running or self._retries:
            await asyncio.gather(*self._running.values(), *self._retries, return_exceptions=True)

    async def close(self) -> None:
        """Cancel what runs and wait for it: an interrupted task resumes from its rows at the next start."""
        _local_runners.pop(self.runtime.database.engine.sync_engine, None)
        self._again.clear()
        # A task waiting to run again is cancelled too: its work resumes from its rows at the next start.
        tasks = [*self._loops, *self._retries, *self._running.values()]
        for running in tasks:
            running.cancel()
        for running in tasks:
            with contextlib.suppress(BaseException):
                await running
        self._loops.clear()


# --- PostgreSQL: procrastinate (its workers: `cityhealth.worker`) ---------------------------------------------


def is_queue_schema(name: str | None, type_: str, *_: object) -> bool:
    """Alembic's `include_name`: False for procrastinate's own tables, which its schema (our migration) makes
    and no model declares, so that comparing the models with the database leaves them alone."""
    return not (type_ in ("table", "index") and (name or "").startswith(("procrastinate_", "idx_procrastinate_")))


def cron_line(every_s: int) -> str:
    """Every `every_s` seconds as procrastinate's cron line (an optional sixth column holds the seconds)."""
    for unit, line in ((1, "* * * * * */{n}"), (60, "*/{n} * * * *"), (3600, "0 */{n} * * *")):
        n, rest = divmod(every_s, unit)
        if not rest and 0 < n < (24 if unit == 3600 else 60) and (24 if unit == 3600 else 60) % n == 0:
            return line.format(n=n)
    raise ValueError(f"a period must divide a minute, an hour or a day, not {every_s} s")
