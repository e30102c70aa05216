"""The job queue (queue.py): a task exists if and only if its transaction commits, on both backends; the
in-process runner (SQLite) recovers unfinished work on start and owns its tasks; the periodic schedule."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from cityhealth import queue, worker
from cityhealth.app import TASK_MODULES
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.conftest import BACKEND

assert TASK_MODULES  # the rooms' registrations
PROBE = "test.probe"
ran: list[dict[str, Any]] = []
gates: list[asyncio.Event] = []  # the current test's: an event belongs to one event loop


@queue.task(PROBE, lock_by="item")
async def probe(runtime: queue.Runtime, item: int) -> None:
    ran.append({"item": item})
    await gates[-1].wait()


unfinished: list[dict[str, Any]] = []  # what the probe's "rows" say is left to do


@queue.recover(PROBE)
async def probe_unfinished(runtime: queue.Runtime) -> list[dict[str, Any]]:
    return list(unfinished)


FLAKY = "test.flaky"
flaky_runs: list[int] = []


@queue.task(FLAKY)
async def flaky(runtime: queue.Runtime, item: int, interruptions: int = 1) -> None:
    """Its first `interruptions` runs meet a lost connection. Its rows never say it is unfinished, and it has no lock
    (on PostgreSQL, requeue_lost passes it over): only the runner's retry can run it again."""
    flaky_runs.append(item)
    if len(flaky_runs) <= interruptions:
        raise ConnectionResetError("connection reset by peer")


@queue.recover(FLAKY)
async def flaky_unfinished(runtime: queue.Runtime) -> list[dict[str, Any]]:
    return []


@pytest.fixture(autouse=True)
async def gate() -> asyncio.Event:
    ran.clear()
    unfinished.clear()
    flaky_runs.clear()
    gates.append(asyncio.Event())
    gates[-1].set()
    return gates[-1]


async def _queued(database: Database) -> int:
    async with database.transaction() as session:
        found = await session.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"), {"name": PROBE}
        )
        return int(found.scalar_one())


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _defer_then_fail(database: Database) -> None:
    async with database.transaction() as session:
        await queue.defer(session, PROBE, item=1)
        raise RuntimeError("the row's transaction fails")


async def test_a_rolled_back_transaction_leaves_no_task_and_a_committed_one_leaves_one(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=False)
    await runner.start()
    try:
        with pytest.raises(RuntimeError, match="fails"):
            await _defer_then_fail(database)
        async with database.transaction() as session:
            await queue.defer(session, PROBE, item=2)
            await _settle()
            assert ran == []  # not before the commit
        await runner.idle()
        if BACKEND == "postgresql":
            assert ran == []  # on PostgreSQL a worker runs it: it waits in the queue's table
            assert await _queued(database) == 1
        else:
            assert ran == [{"item": 2}]
    finally:
        await runner.close()


@pytest.mark.skipif(BACKEND != "sqlite", reason="the in-process runner is SQLite's")
async def test_a_task_deferred_while_it_runs_runs_once_more_afterwards(
    settings: Settings, database: Database, clock: SimulatedClock, gate: asyncio.Event
) -> None:
    gate.clear()
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=False)
    await runner.start()
    try:
        for _ in range(3):
            async with database.transaction() as session:
                await queue.defer(session, PROBE, item=7)
        await _settle()
        assert ran == [{"item": 7}]  # one at a time per lock
        gate.set()
        await runner.idle()
        assert ran == [{"item": 7}, {"item": 7}]  # the deferrals made meanwhile fold into one more run
    finally:
        await runner.close()


@pytest.mark.skipif(BACKEND != "sqlite", reason="the in-process runner is SQLite's")
async def test_closing_the_runner_cancels_and_awaits_what_runs(
    settings: Settings, database: Database, clock: SimulatedClock, gate: asyncio.Event
) -> None:
    gate.clear()
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=True)
    await runner.start()
    async with database.transaction() as session:
        await queue.defer(session, PROBE, item=3)
    await _settle()
    running = [task for task in asyncio.all_tasks() if task.get_name().startswith(("task-", "periodic-"))]
    assert {task.get_name() for task in running} >= {"task-test.probe:3", "periodic-booking.sweep_holds"}
    await runner.close()
    assert all(task.done() for task in running)
    async with database.transaction() as session:  # no runner: the row is left for the next start
        await queue.defer(session, PROBE, item=4)
    await _settle()
    assert ran == [{"item": 3}]


@pytest.mark.skipif(BACKEND != "sqlite", reason="the in-process runner is SQLite's")
async def test_closing_the_runner_cancels_a_task_waiting_to_run_again(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "RETRY_PAUSE_S", 3600.0)
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=False)
    await runner.start()
    async with database.transaction() as session:
        await queue.defer(session, FLAKY, item=8)
    await _settle()
    waiting = [task for task in asyncio.all_tasks() if task.get_name() == f"retry-{FLAKY}"]
    assert flaky_runs == [8]  # interrupted, to run again in an hour
    assert len(waiting) == 1
    await asyncio.wait_for(runner.close(), timeout=5)
    assert waiting[0].cancelled()
    assert flaky_runs == [8]  # its work resumes from its rows at the next start


@pytest.mark.skipif(BACKEND != "sqlite", reason="the in-process runner is SQLite's")
async def test_the_runner_takes_up_unfinished_work_when_it_starts(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    unfinished.extend([{"item": 11}, {"item": 12}])
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=False)
    await runner.start()
    await runner.idle()
    await runner.close()
    assert sorted(run["item"] for run in ran) == [11, 12]


@pytest.mark.skipif(BACKEND != "postgresql", reason="procrastinate's table")
async def test_unfinished_work_with_no_task_is_deferred_again_once(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    unfinished.extend([{"item": 21}, {"item": 22}])
    runtime = queue.Runtime(settings, database, clock)
    async with database.transaction() as session:
        await queue.defer(session, PROBE, item=21)  # still has its task
    assert await worker.requeue_lost(runtime) == 1
    assert await worker.requeue_lost(runtime) == 0
    assert await _queued(database) == 2


def test_the_periodic_work_is_registered_with_its_schedule() -> None:
    schedule = {name: spec.every_s for name, spec in queue.PERIODIC.items()}
    assert schedule == {
        "booking.sweep_holds": 30,
        "booking.mark_no_shows": 300,
        "booking.dispatch_notifications": 60,
        "booking.expire_waitlist": 300,
        "booking.send_reminders": 300,
        "collection.purge_raw_payloads": 3600,
        "hotline.escalate_crisis_follow_ups": 60,
        "hotline.remind_work_orders": 300,
        "hotline.retry_work_order_results": 60,
        "records.link_new_records": 60,
        "records.rebuild_chronic_months": 21600,
        "security.purge_auth_failures": 3600,
    }
    assert queue.TASKS["collection.process_job"].recover is not None
    assert queue.TASKS["booking.send_notifications"].recover is not None


@pytest.mark.parametrize(
    ("every_s", "cron"),
    [(30, "* * * * * */30"), (1, "* * * * * */1"), (300, "*/5 * * * *"), (3600, "0 */1 * * *")],
)
def test_a_period_becomes_a_cron_line(every_s: int, cron: str) -> None:
    assert queue.cron_line(every_s) == cron


@pytest.mark.parametrize("every_s", [7, 90, 5400])
def test_a_period_no_cron_line_can_say_is_refused(every_s: int) -> None:
    with pytest.raises(ValueError, match="must divide a minute, an hour or a day"):
        queue.periodic("test.never", every_s=every_s)


def test_a_worker_schedules_the_periodic_work_only_on_the_system_clock(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    runtime = queue.Runtime(settings, database, clock)
    with_periodic = worker.procrastinate_app(runtime, run_periodic=True)
    without = worker.procrastinate_app(runtime, run_periodic=False)
    scheduled = {name for name, _ in with_periodic.periodic_registry.periodic_tasks}
    assert "collection.process_job" in with_periodic.tasks
    assert "booking.sweep_holds" in with_periodic.tasks
    assert "booking.sweep_holds" not in without.tasks
    assert "queue.retry_stalled" in without.tasks  # the queue's own housekeeping runs regardless
    assert scheduled == {*queue.PERIODIC, "queue.retry_stalled"}
    assert {name for name, _ in without.periodic_registry.periodic_tasks} == {"queue.retry_stalled"}


async def test_a_lock_race_between_two_workers_fetching_is_no_job_not_a_crash() -> None:
    # Two workers fetching at once may pick two jobs of one lock; the loser's update breaks the lock index.
    # Seen with two `cityhealth worker` processes (replay at 0.1): the worker ended on it and the month stopped.
    from types import SimpleNamespace

    from procrastinate.exceptions import UniqueViolation

    raised: list[BaseException] = []

    async def fetch_job(queues: Any, worker_id: int) -> Any:
        raise raised.pop()

    app = SimpleNamespace(job_manager=SimpleNamespace(fetch_job=fetch_job))
    worker._tolerate_lock_races(app)
    raised.append(UniqueViolation(constraint_name=worker.LOCK_INDEX, queueing_lock=None))
    assert await app.job_manager.fetch_job(queues=["cityhealth"], worker_id=1) is None
    other = UniqueViolation(constraint_name="procrastinate_jobs_queueing_lock_idx_v1", queueing_lock="x")
    raised.append(other)
    with pytest.raises(UniqueViolation) as caught:
        await app.job_manager.fetch_job(queues=["cityhealth"], worker_id=1)
    assert caught.value is other


class _Loop:
    """A procrastinate Worker's part that _work_until uses: run() ends at once (`ends`) or when stopped."""

    def __init__(self, name: str, *, ends: bool) -> None:
        self.worker_name = name
        self._stopped = asyncio.Event()
        if ends:
            self._stopped.set()

    async def run(self) -> None:
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


async def test_a_worker_loop_that_ends_unasked_is_a_failure_not_a_stop() -> None:
    # procrastinate ends a worker whose listener lost its connection (a database restart) without raising.
    with pytest.raises(worker.WorkerEnded):
        await worker._work_until(asyncio.Event(), [_Loop("server", ends=True), _Loop("periodic", ends=False)])
    stop = asyncio.Event()
    stop.set()
    await worker._work_until(stop, [_Loop("server", ends=False), _Loop("periodic", ends=False)])


async def test_the_server_worker_is_started_again_after_it_failed(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def run_worker(runtime: queue.Runtime, *, stop: asyncio.Event, **_options: Any) -> None:
        calls.append("run")
        if len(calls) < 3:
            raise worker.WorkerEnded("its listener lost the database")
        await stop.wait()

    monkeypatch.setattr(worker, "run_worker", run_worker)
    monkeypatch.setattr(worker, "RESTART_PAUSES_S", (0.01, 0.02))
    server_worker = worker.ServerWorker(queue.Runtime(settings, database, clock), concurrency=1, run_periodic=False)
    for _ in range(200):
        if len(calls) == 3:
            break
        await asyncio.sleep(0.01)
    assert (len(calls), server_worker.restarts) == (3, 2)
    await server_worker.stop()
    assert server_worker._task.done()
    assert server_worker._task.exception() is None


@pytest.mark.skipif(BACKEND != "postgresql", reason="procrastinate's stalled-job check")
async def test_the_stalled_job_check_goes_on_past_a_job_that_ended_after_it_was_listed(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers' checks of successive ticks can overlap: the later one's retry of a job the earlier one already
    # retried (or a job that ended meanwhile) failed, and the jobs listed after it were left stalled until the next
    # tick. Here the first job listed ends between the listing and its retry.
    async with database.transaction() as session:
        for item in (1, 2):
            await queue.defer(session, PROBE, item=item)
        await session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL "
                                   "WHERE task_name = :name"), {"name": PROBE})
    app = worker.procrastinate_app(queue.Runtime(settings, database, clock), run_periodic=False)
    async with app.open_async():
        listing = app.job_manager.get_stalled_jobs

        async def listed_then_one_ends(**options: Any) -> Any:
            stalled = sorted(await listing(**options), key=lambda job: job.id)
            async with database.transaction() as session:
                await session.execute(text("DELETE FROM procrastinate_jobs WHERE id = :id"), {"id": stalled[0].id})
            return stalled

        monkeypatch.setattr(app.job_manager, "get_stalled_jobs", listed_then_one_ends)
        await app.tasks["queue.retry_stalled"](timestamp=0)
    async with database.transaction() as session:
        left = (await session.execute(text("SELECT args->>'item', status FROM procrastinate_jobs "
                                           "WHERE task_name = :name"), {"name": PROBE})).all()
    assert [tuple(row) for row in left] == [("2", "todo")]  # retried: a worker takes it again


def test_a_task_interrupted_again_and_again_waits_twice_as_long_each_time_then_is_given_up() -> None:
    pauses = [queue.retry_pause(n) for n in range(1, queue.MAX_INTERRUPTIONS + 2)]
    assert pauses[:4] == [queue.RETRY_PAUSE_S, 2 * queue.RETRY_PAUSE_S, 4 * queue.RETRY_PAUSE_S,
                          8 * queue.RETRY_PAUSE_S]
    assert max(pause for pause in pauses if pause is not None) == queue.MAX_RETRY_PAUSE_S
    assert pauses[-1] is None  # the first run, then MAX_INTERRUPTIONS runs again: no more
    assert 30 * 60 < sum(pause for pause in pauses if pause is not None) < 2 * 3600  # outlasts a restart or failover


async def _flaky_runs_on_either_backend(runtime: queue.Runtime, runs: int, **arguments: Any) -> list[Any]:
    """FLAKY deferred with `arguments` and run by the backend's runner: in process until nothing is left to run;
    on PostgreSQL until it has run `runs` times (and a moment more, for a run too many), with the statuses of
    its jobs left in the queue."""
    stop = asyncio.Event()
    if BACKEND == "sqlite":
        runner = queue.LocalRunner(runtime, run_periodic=False)
        await runner.start()
    else:
        running = asyncio.create_task(worker.run_worker(runtime, concurrency=1, run_periodic=False, stop=stop))
    try:
        async with runtime.database.transaction() as session:
            await queue.defer(session, FLAKY, **arguments)
        if BACKEND == "sqlite":
            await runner.idle()
        else:
            for _ in range(1000):
                if len(flaky_runs) >= runs:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
    finally:
        if BACKEND == "sqlite":
            await runner.close()
        else:
            stop.set()
            await running
    if BACKEND == "sqlite":
        return []
    async with runtime.database.transaction() as session:
        left = await session.scalars(text("SELECT status FROM procrastinate_jobs WHERE task_name = :name"),
                                     {"name": FLAKY})
        return list(left)


async def test_a_task_the_database_interrupts_is_run_again_by_the_runner_of_either_backend(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "RETRY_PAUSE_S", 0.0)
    left = await _flaky_runs_on_either_backend(queue.Runtime(settings, database, clock), 2, item=5)
    assert flaky_runs == [5, 5]  # interrupted, then run again to its end
    assert left == []  # on PostgreSQL: succeeded on its second attempt (successful jobs are deleted)


async def test_a_task_interrupted_more_than_the_cap_is_given_up_by_the_runner_of_either_backend(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "RETRY_PAUSE_S", 0.0)
    monkeypatch.setattr(queue, "MAX_INTERRUPTIONS", 2)
    left = await _flaky_runs_on_either_backend(queue.Runtime(settings, database, clock), 3, item=6, interruptions=99)
    assert flaky_runs == [6, 6, 6]  # its run, then two more: no fourth
    assert left == ([] if BACKEND == "sqlite" else ["failed"])


async def test_only_a_failure_of_the_database_is_an_interruption(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    runtime = queue.Runtime(settings, database, clock)
    with pytest.raises(queue.Interrupted, match=r"test\.flaky interrupted by the database"):
        await queue.run_task(queue.TASKS[FLAKY], runtime, {"item": 1})
    await queue.run_task(queue.TASKS[FLAKY], runtime, {"item": 1})
    spec = queue.TaskSpec(name="test.bad", function=_bad_data, lock_by=None)
    with pytest.raises(ValueError, match="not JSON"):  # the work's own failure is not retried
        await queue.run_task(spec, runtime, {})


async def _bad_data(runtime: queue.Runtime) -> None:
    raise ValueError("a line that is not JSON")
