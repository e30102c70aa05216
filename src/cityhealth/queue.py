"""Background work as tasks: on PostgreSQL a procrastinate job queue shared by every worker, on SQLite the
same task functions run in the server's process.

The rooms register their task functions here (`@task`, `@periodic`) and defer them with `defer(session, …)`
inside the transaction that writes the row the task works on: on PostgreSQL the queue's row is inserted by
procrastinate's own SQL function in that very transaction, so a rolled-back row leaves no task and a
committed one always has its task. This module imports no room (the layers contract): `app.py` and `cli.py`
import the rooms' task modules, which registers their functions before a runner is built.

docs/decisions/job-queue.md says why procrastinate, how the workers share the jobs, and how SQLite works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
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

logger = logging.getLogger("cityhealth.queue")
QUEUE_NAME = "cityhealth"  # the rooms' tasks (bulk jobs)
# The periodic work and the queue's housekeeping: a queue of their own, taken by a worker's second loop, so
# that a hold sweep is never stuck behind a bulk job that takes minutes.
PERIODIC_QUEUE = "cityhealth-periodic"
_PENDING = "cityhealth.queue.pending"
_REQUEUE_LOCK = 0x0C17_0001
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
    _cron(every_s)  # refuses a period a cron line cannot say

    def register(function: PeriodicFunction[_T]) -> PeriodicFunction[_T]:
        PERIODIC[name] = PeriodicSpec(name, function, every_s)
        return function

    return register


def _lock(spec: TaskSpec, arguments: dict[str, Any]) -> str | None:
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
            {"queue": QUEUE_NAME, "task": name, "lock": _lock(spec, arguments), "args": payload},
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
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
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
        key = _lock(spec, arguments) or f"{name}:{json.dumps(arguments, sort_keys=True)}"
        if key in self._running:
            self._again[key] = (name, arguments)
            return
        self._running[key] = asyncio.create_task(self._run(key, spec, arguments), name=f"task-{key}")

    async def _run(self, key: str, spec: TaskSpec, arguments: dict[str, Any]) -> None:
        try:
            await spec.function(self.runtime, **arguments)
        except Exception:  # recorded by the task on its own rows; the runner goes on with the others
            logger.exception("task failed", extra={"task": spec.name})
        finally:
            del self._running[key]
            again = self._again.pop(key, None)
            if again is not None:
                self.submit(*again)

    async def _every(self, spec: PeriodicSpec) -> None:
        while True:
            try:
                await spec.function(self.runtime)
            except Exception:  # a failed round must not end the loop; the next one retries
                logger.exception("periodic task failed", extra={"task": spec.name})
            await asyncio.sleep(spec.every_s)

    async def idle(self) -> None:
        """Until no task runs (tests, and the simulator between days)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel what runs and wait for it: an interrupted task resumes from its rows at the next start."""
        _local_runners.pop(self.runtime.database.engine.sync_engine, None)
        self._again.clear()
        tasks = [*self._loops, *self._running.values()]
        for running in tasks:
            running.cancel()
        for running in tasks:
            with contextlib.suppress(BaseException):
                await running
        self._loops.clear()


# --- PostgreSQL: procrastinate --------------------------------------------------------------------------------


def is_queue_schema(name: str | None, type_: str, *_: object) -> bool:
    """Alembic's `include_name`: False for procrastinate's own tables, which its schema (our migration) makes
    and no model declares, so that comparing the models with the database leaves them alone."""
    return not (type_ in ("table", "index") and (name or "").startswith(("procrastinate_", "idx_procrastinate_")))


def conninfo(database: Database) -> str:
    """The database's URL as libpq takes it (procrastinate's psycopg connector), from SQLAlchemy's."""
    return database.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _cron(every_s: int) -> str:
    """Every `every_s` seconds as procrastinate's cron line (an optional sixth column holds the seconds)."""
    for unit, line in ((1, "* * * * * */{n}"), (60, "*/{n} * * * *"), (3600, "0 */{n} * * *")):
        n, rest = divmod(every_s, unit)
        if not rest and 0 < n < (24 if unit == 3600 else 60) and (24 if unit == 3600 else 60) % n == 0:
            return line.format(n=n)
    raise ValueError(f"a period must divide a minute, an hour or a day, not {every_s} s")


def procrastinate_app(runtime: Runtime, *, run_periodic: bool) -> Any:
    """A procrastinate App whose tasks are the registered functions, run with `runtime`.

    With `run_periodic`, the periodic work is scheduled too (procrastinate defers each tick once, whichever
    worker gets there first). Retrying the jobs of a dead worker is always scheduled: it is the queue's own
    housekeeping, not the platform's periodic work.
    """
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(runtime.database)))
    _tolerate_lock_races(app)
    for spec in TASKS.values():
        app.task(name=spec.name, queue=QUEUE_NAME, pass_context=False)(_bound(spec.function, runtime))
    settings = runtime.settings

    async def retry_stalled(timestamp: int) -> None:
        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.worker_stalled_after_s)
        for job in stalled:
            logger.warning("retrying the job of a worker that stopped", extra={"task": job.task_name, "job_id": job.id})
            await app.job_manager.retry_job(job)
        await requeue_lost(runtime)

    app.periodic(cron=_cron(settings.worker_heartbeat_s))(
        app.task(name="queue.retry_stalled", queue=PERIODIC_QUEUE, pass_context=False)(retry_stalled)
    )
    if run_periodic:
        for every in PERIODIC.values():
            app.periodic(cron=_cron(every.every_s))(
                app.task(name=every.name, queue=PERIODIC_QUEUE, pass_context=False)(_periodic_bound(every, runtime))
            )
    return app


# The index that lets one job of a lock run at a time (procrastinate's schema).
LOCK_INDEX = "procrastinate_jobs_lock_idx_v1"


def _tolerate_lock_races(app: Any) -> None:
    """Two workers fetching at the same moment can each pick a job of the same lock (procrastinate's fetch
    query does not see the other's pick); the later one's update then breaks the one-running-job-per-lock
    index and, unhandled, ends that worker process. Taken as "no job this time": the job stays to do, and the
    worker fetches again on its next notification or poll."""
    from procrastinate.exceptions import UniqueViolation

    fetch = app.job_manager.fetch_job

    async def fetch_job(queues: Any, worker_id: int) -> Any:
        try:
            return await fetch(queues=queues, worker_id=worker_id)
        except UniqueViolation as exc:
            if exc.constraint_name != LOCK_INDEX:
                raise
            logger.info("another worker took a job of the same lock at the same moment; fetching again later")
            return None

    app.job_manager.fetch_job = fetch_job


def _bound(function: TaskFunction, runtime: Runtime) -> Callable[..., Awaitable[None]]:
    async def run(**arguments: Any) -> None:
        await function(runtime, **arguments)

    return run


def _periodic_bound(spec: PeriodicSpec, runtime: Runtime) -> Callable[[int], Awaitable[None]]:
    async def run(timestamp: int) -> None:
        await spec.function(runtime)

    return run


async def requeue_lost(runtime: Runtime) -> int:
    """Defer again the unfinished work (`recover`) that has no task waiting or running.

    A task cut short by a worker's shutdown ends "aborted" in procrastinate, not retried, while its rows say
    it is unfinished: this finds it. Run when a worker starts and with the stalled-job check.
    """
    requeued = 0
    async with runtime.database.transaction() as session:
        # One at a time across the workers, or two would each defer the same lost job.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REQUEUE_LOCK})
        for spec in TASKS.values():
            if spec.recover is None or spec.lock_by is None:
                continue
            for arguments in await spec.recover(runtime):
                live = await session.execute(
                    text("SELECT 1 FROM procrastinate_jobs WHERE lock = :lock AND status IN ('todo', 'doing') LIMIT 1"),
                    {"lock": _lock(spec, arguments)},
                )
                if live.first() is None:
                    await defer(session, spec.name, **arguments)
                    requeued += 1
    return requeued


async def run_worker(
    runtime: Runtime, *, concurrency: int, run_periodic: bool, stop: asyncio.Event | None = None,
    in_server: bool = False,
) -> None:
    """Take tasks from the queue until `stop` is set (outside a server, also on SIGINT / SIGTERM).

    Two loops share the process's connection pool: `concurrency` tasks of the rooms at once, and one of
    the periodic queue at a time. Each loop ends gracefully: the jobs it runs get the shutdown timeout to
    finish, then are cancelled (`requeue_lost` defers them again). A worker that fails ends the other.

    The stop is an event that is looked at, not a cancellation: on Python 3.11 a cancellation can be lost
    while the pool opens (docs/decisions/job-queue.md, "Stopping a worker"). A cancelled call still stops
    its loops before it ends.
    """
    from procrastinate.worker import Worker

    stop = stop or asyncio.Event()
    app = procrastinate_app(runtime, run_periodic=run_periodic)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # A line per job and per tick of every periodic task is noise; warnings (a task failed) still show.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    name = "server" if in_server else "worker"
    options: dict[str, Any] = {
        "install_signal_handlers": False,
        "update_heartbeat_interval": float(runtime.settings.worker_heartbeat_s),
        "stalled_worker_timeout": float(runtime.settings.worker_stalled_after_s),
        "delete_jobs": "successful",
        # Then the tasks still running are cancelled: a bulk job rolls its chunk back and is requeued.
        "shutdown_graceful_timeout": float(runtime.settings.worker_shutdown_timeout_s),
    }
    signals = () if in_server else (signal.SIGINT, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with app.open_async():
            if stop.is_set():
                return
            await requeue_lost(runtime)
            workers: list[Any] = [  # Any: procrastinate's Worker.run and stop are not annotated
                Worker(app, queues=[QUEUE_NAME], name=name, concurrency=concurrency, **options),
                Worker(app, queues=[PERIODIC_QUEUE], name=f"{name}-periodic", concurrency=1, **options),
            ]
            await _work_until(stop, workers)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


_STOP_AGAIN_S = 0.5


class WorkerEnded(RuntimeError):
    """A worker loop ended without being asked to stop."""


async def _work_until(stop: asyncio.Event, workers: list[Any]) -> None:
    """Run the workers until `stop` is set or one of them ends, then stop them all and wait for them.

    A loop that ended unasked is a failure (WorkerEnded, or the error it raised): procrastinate ends a worker whose
    side task failed — its listener's connection lost to a database restart — without raising, after logging why,
    and a `cityhealth worker` that exited 0 then would look to its supervisor like one that was told to stop.
    """
    runs = {asyncio.create_task(worker.run(), name=f"procrastinate-{worker.worker_name}") for worker in workers}
    stopping = asyncio.create_task(stop.wait(), name="worker-stop")
    try:
        await asyncio.wait({stopping, *runs}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        pending = runs
        while pending:
            # Asked again until it has ended: a worker's run() forgets a stop asked before it began.
            for worker in workers:
                worker.stop()
            _, pending = await asyncio.wait(pending, timeout=_STOP_AGAIN_S)
    for run in runs:
        if not run.cancelled():
            run.result()  # raises the error a worker ended on
    if not stop.is_set():
        raise WorkerEnded("a task worker loop ended without being asked to stop (procrastinate's log line above "
                          "says why: its connection to the queue was lost, say)")


# The pauses before the server's worker is started again after it failed, one more step for each failure in a
# row; a worker that ran longer than the last pause before failing starts from the first again.
RESTART_PAUSES_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class ServerWorker:
    """The server's own worker (PostgreSQL): started in its lifespan and stopped at the lifespan's end.

    A worker fails when one of its loops ends unasked, as procrastinate's do when their connection to the queue
    is lost (the database stopped or restarted). A `cityhealth worker` process then exits 1 for its supervisor
    to start again; the server's worker has no supervisor but this: it is started again after a pause, so that a
    database restart does not leave the server answering requests with its background work stopped until the
    server itself restarts.
    """

    def __init__(self, runtime: Runtime, *, concurrency: int, run_periodic: bool) -> None:
        self.runtime = runtime
        self.restarts = 0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(concurrency, run_periodic), name="task-worker")

    async def _run(self, concurrency: int, run_periodic: bool) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await run_worker(self.runtime, concurrency=concurrency, run_periodic=run_periodic, stop=self._stop,
                                 in_server=True)
                return  # stopped as asked
            except Exception as error:
                if self._stop.is_set():
                    raise
                if time.monotonic() - started > RESTART_PAUSES_S[-1]:
                    failures = 0
                pause = RESTART_PAUSES_S[min(failures, len(RESTART_PAUSES_S) - 1)]
                failures += 1
                # WorkerEnded's cause is in procrastinate's own log line, with its traceback; another error's here.
                logger.error("the server's task worker failed (%s); starting it again in %.0f s", error, pause,
                             exc_info=None if isinstance(error, WorkerEnded) else error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
            if self._stop.is_set():
                return
            self.restarts += 1

    async def stop(self) -> None:
        """Stop the worker and wait for it: a job it runs gets the shutdown timeout, then is cancelled.

        A worker that has still not ended a few seconds after that is cancelled and left behind, so that it
        cannot hold the server's shutdown: its interrupted job is taken up again by the stalled-job check.
        """
        self._stop.set()
        done, _ = await asyncio.wait({self._task}, timeout=self.runtime.settings.worker_shutdown_timeout_s + 5)
        if not done:
            logger.error("the server's task worker did not stop in time; shutting down without it")
            self._task.cancel()
        elif not self._task.cancelled() and self._task.exception() is not None:
            logger.error("the server's task worker had stopped on an error", exc_info=self._task.exception())
