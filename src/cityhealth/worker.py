"""The queue's workers on PostgreSQL: procrastinate's App built from the registered tasks (`cityhealth.queue`),
`cityhealth worker` (`run_worker`), the server's own worker that restarts after a failure (`ServerWorker`), and
the requeueing of work a stopped worker left unfinished.

docs/decisions/job-queue.md says how the workers share the jobs and how one is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from cityhealth import queue
from cityhealth.db.engine import Database

logger = logging.getLogger("cityhealth.queue")
_REQUEUE_LOCK = 0x0C17_0001


def conninfo(database: Database) -> str:
    """The database's URL as libpq takes it (procrastinate's psycopg connector), from SQLAlchemy's."""
    return database.url.set(drivername="postgresql").render_as_string(hide_password=False)


def procrastinate_app(runtime: queue.Runtime, *, run_periodic: bool) -> Any:
    """A procrastinate App whose tasks are the registered functions, run with `runtime`.

    With `run_periodic`, the periodic work is scheduled too (procrastinate defers each tick once, whichever
    worker gets there first). Retrying the jobs of a dead worker is always scheduled: it is the queue's own
    housekeeping, not the platform's periodic work.
    """
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(runtime.database)))
    _tolerate_lock_races(app)
    from procrastinate.retry import RetryDecision

    class RetryInterrupted(procrastinate.BaseRetryStrategy):
        """A task the database interrupted runs again after the pause the in-process runner takes too
        (queue.retry_pause); any other failure is the work's, and is not retried."""

        def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
            pause = queue.retry_pause(job.attempts + 1) if isinstance(exception, queue.Interrupted) else None
            return None if pause is None else RetryDecision(retry_in={"milliseconds": round(pause * 1000)})

    for spec in queue.TASKS.values():
        app.task(name=spec.name, queue=queue.QUEUE_NAME, pass_context=False,
                 retry=RetryInterrupted())(_bound(spec, runtime))
    settings = runtime.settings

    async def retry_stalled(timestamp: int) -> None:
        from procrastinate.exceptions import ConnectorException

        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.worker_stalled_after_s)
        for job in stalled:
            try:
                await app.job_manager.retry_job(job)
            except ConnectorException:
                # Ended since it was listed, or retried by another worker's check of the tick before: the others
                # still get theirs (a database that is gone fails requeue_lost below).
                logger.info("a stalled job had ended or been retried meanwhile", extra={"job_id": job.id})
                continue
            logger.warning("retrying the job of a worker that stopped", extra={"task": job.task_name, "job_id": job.id})
        await requeue_lost(runtime)

    app.periodic(cron=queue.cron_line(settings.worker_heartbeat_s))(
        app.task(name="queue.retry_stalled", queue=queue.PERIODIC_QUEUE, pass_context=False)(retry_stalled)
    )
    if run_periodic:
        for every in queue.PERIODIC.values():
            periodic_task = app.task(name=every.name, queue=queue.PERIODIC_QUEUE, pass_context=False)
            app.periodic(cron=queue.cron_line(every.every_s))(periodic_task(_periodic_bound(every, runtime)))
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


def _bound(spec: queue.TaskSpec, runtime: queue.Runtime) -> Callable[..., Awaitable[None]]:
    async def run(**arguments: Any) -> None:
        await queue.run_task(spec, runtime, arguments)

    return run


def _periodic_bound(spec: queue.PeriodicSpec, runtime: queue.Runtime) -> Callable[[int], Awaitable[None]]:
    async def run(timestamp: int) -> None:
        await spec.function(runtime)

    return run


async def requeue_lost(runtime: queue.Runtime) -> int:
    """Defer again the unfinished work (`recover`) that has no task waiting or running.

    A task cut short by a worker's shutdown ends "aborted" in procrastinate, not retried, while its rows say
    it is unfinished: this finds it. Run when a worker starts and with the stalled-job check.
    """
    requeued = 0
    async with runtime.database.transaction() as session:
        # One at a time across the workers, or two would each defer the same lost job.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REQUEUE_LOCK})
        for spec in queue.TASKS.values():
            if spec.recover is None or spec.lock_by is None:
                continue
            for arguments in await spec.recover(runtime):
                live = await session.execute(
                    text("SELECT 1 FROM procrastinate_jobs WHERE lock = :lock AND status IN ('todo', 'doing') LIMIT 1"),
                    {"lock": queue.lock_of(spec, arguments)},
                )
                if live.first() is None:
                    await queue.defer(session, spec.name, **arguments)
                    requeued += 1
    return requeued


async def run_worker(
    runtime: queue.Runtime, *, concurrency: int, run_periodic: bool, stop: asyncio.Event | None = None,
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
                Worker(app, queues=[queue.QUEUE_NAME], name=name, concurrency=concurrency, **options),
                Worker(app, queues=[queue.PERIODIC_QUEUE], name=f"{name}-periodic", concurrency=1, **options),
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

    def __init__(self, runtime: queue.Runtime, *, concurrency: int, run_periodic: bool) -> None:
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
