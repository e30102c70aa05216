"""Bulk jobs run by processes of their own (`CITYHEALTH_INGEST_PROCESSES=N`), not by the server's event loop.

In the server's loop, a job's chunk writes share one core with every request the server answers: a day's
uploads then slow the bookings and the real-time batches arriving meanwhile, and the jobs wait for them in
turn. An ingest process has its own loop (and its own worker processes for preparing chunks, workers.py);
the server only spools an upload, records the job and hands its id over.

Nothing but the job's id crosses: the job row is the only coordination, as between two servers (jobs.py). A
job runs from its last committed chunk wherever it runs, so a process that dies loses no data: its jobs are
handed out again when it is replaced, and any process that resumes a job skips the chunks already committed.
Jobs go round the processes in turn; each runs up to `JOBS_PER_PROCESS` at a time and the rest wait, in the
order they came. PostgreSQL only (config.py): SQLite lets one process write at a time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from cityhealth.clock import Clock, FollowingClock, SimulatedClock, SystemClock
from cityhealth.collection.jobs import JobRunner
from cityhealth.collection.prepare import Collector
from cityhealth.collection.repository import bulk_jobs
from cityhealth.collection.workers import PreparePool
from cityhealth.config import Settings
from cityhealth.db.engine import Database

logger = logging.getLogger("cityhealth.collection.job_processes")
JOBS_PER_PROCESS = 8
_POLL_S = 0.05
_STOP_TIMEOUT_S = 30.0


class JobProcesses:
    """Hands bulk jobs to ingest processes; the server-side counterpart of JobRunner, with the same methods.

    Each process has a pipe of its own, and jobs go round them in turn. Not one shared queue: a reader killed
    inside a multiprocessing.Queue's get() takes its read lock with it, and the queue is dead for every other.
    """

    def __init__(self, settings: Settings, database: Database, clock: Clock, processes: int) -> None:
        if processes < 1:
            raise ValueError("at least one ingest process")
        self.settings = settings
        self.database = database
        # A simulated clock is followed from shared memory; production processes read the system's.
        self._clock = clock.follower() if isinstance(clock, SimulatedClock) else None
        self._context = multiprocessing.get_context("spawn")  # a fork would copy the server's threads and sockets
        self._slots: list[tuple[SpawnProcess, Connection] | None] = [None] * processes
        self._turn = 0
        self._closed = False
        self._resuming: set[asyncio.Task[None]] = set()
        # Before multiprocessing's own exit hook joins the processes, which would wait for ever on open pipes.
        atexit.register(self._close_pipes)

    def _close_pipes(self) -> None:
        for slot in self._slots:
            if slot is not None:
                slot[1].close()

    @property
    def pids(self) -> list[int]:
        return [slot[0].pid for slot in self._slots if slot is not None and slot[0].pid is not None]

    def _start(self, index: int) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=serve,
            args=(self.settings, self._clock, reader),
            name=f"cityhealth-ingest-{index}",
            # Not a daemon (its chunk workers are its children): it stops when its pipe closes, which the server's
            # exit does however it ends.
        )
        process.start()
        reader.close()  # the child's end
        self._slots[index] = (process, writer)

    def _ensure_running(self) -> bool:
        """Start missing processes; True if one had died (its jobs must be handed out again)."""
        replaced = False
        for index, slot in enumerate(self._slots):
            if slot is not None and slot[0].is_alive():
                continue
            if slot is not None:
                process, writer = slot
                logger.warning("an ingest process died; starting another",
                               extra={"exit_code": process.exitcode, "ingest_process": process.name})
                writer.close()
                process.close()
                replaced = True
            self._start(index)
        return replaced

    def _hand_out(self, job_id: int, size_bytes: int) -> bool:
        """Send a job to the next process in turn; True if a dead one had to be replaced first."""
        index = self._turn % len(self._slots)
        self._turn += 1
        replaced = False
        for _ in range(2):
            slot = self._slots[index]
            assert slot is not None  # noqa: S101 - _ensure_running filled every slot
            try:
                slot[1].send((job_id, size_bytes))
                return replaced
            except OSError:  # it died since it was checked: its replacement takes the job
                replaced = self._ensure_running() or True
        return replaced  # not handed out: still queued on its row, for the next resume

    def submit(self, job_id: int, size_bytes: int = 0) -> None:
        if self._closed:
            raise RuntimeError("the ingest processes are closed")
        replaced = self._ensure_running()
        replaced = self._hand_out(job_id, size_bytes) or replaced
        if replaced:
            # The dead process's jobs are still queued or running on their rows: hand them out again. A job
            # handed out twice is harmless (each chunk commits once, under the job row's lock).
            task = asyncio.get_running_loop().create_task(self.resume_unfinished())
            self._resuming.add(task)
            task.add_done_callback(self._resuming.discard)

    async def resume_unfinished(self) -> None:
        async with self.database.transaction() as session:
            unfinished = await bulk_jobs.unfinished_jobs(session)
        self._ensure_running()
        for job_id, size_bytes in unfinished:
            self._hand_out(job_id, size_bytes)

    async def wait(self, job_id: int) -> None:
        """Until the job completed or failed (read from its row: it runs in another process)."""
        while True:
            async with self.database.transaction() as session:
                status = await bulk_jobs.job_status(session, job_id)
            if status in (None, "completed", "failed"):
                return
            await asyncio.sleep(_POLL_S)

    async def close(self) -> None:
        """Stop the processes: a job cut short resumes from its last chunk at the next start."""
        self._closed = True
        atexit.unregister(self._close_pipes)
        loop = asyncio.get_running_loop()
        for slot in self._slots:
            if slot is None:
                continue
            process, writer = slot
            writer.close()  # the end of its pipe: the process stops
            await loop.run_in_executor(None, process.join, _STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join)
            process.close()
        self._slots = [None] * len(self._slots)


def serve(settings: Settings, clock: FollowingClock | None, jobs: Connection) -> None:
    """An ingest process: run the jobs handed over until its pipe closes."""
    from cityhealth.observability import configure_logging

    configure_logging(settings.log_level)
    asyncio.run(_serve(settings, clock or SystemClock(), jobs))


async def _serve(settings: Settings, clock: Clock, jobs: Connection) -> None:
    database = Database(settings.effective_database_url)
    runner = JobRunner(database, Collector(settings), clock, pool=PreparePool(settings))
    loop = asyncio.get_running_loop()
    waiting: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    # Everything sent is read at once (a full pipe would block the server), and run JOBS_PER_PROCESS at a time.
    # A daemon thread: blocked in recv() it must not hold the process open once the loop is done.
    threading.Thread(target=_read_all, args=(jobs, loop, waiting), name="ingest-jobs", daemon=True).start()
    free = asyncio.Semaphore(JOBS_PER_PROCESS)
    try:
        while (item := await waiting.get()) is not None:
            job_id, size_bytes = item
            await free.acquire()
            before = runner.tasks.get(job_id)
            runner.submit(job_id, size_bytes)
            task = runner.tasks[job_id]
            if task is before:  # already running here: this hand-out takes no place
                free.release()
            else:
                task.add_done_callback(lambda _: free.release())
    finally:
        await runner.close()
        await database.dispose()


def _read_all(jobs: Connection, loop: asyncio.AbstractEventLoop, waiting: asyncio.Queue[Any]) -> None:
    """In a thread: pass each job handed out to the event loop; None once the server closed the pipe."""
    try:
        while True:
            loop.call_soon_threadsafe(waiting.put_nowait, jobs.recv())
    except (EOFError, OSError):
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(waiting.put_nowait, None)
