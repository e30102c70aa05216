"""Waiting for a bulk job: it ends, fails, stalls, hangs, or is cancelled; the wait always ends."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.simulation.actors import Actors, SimulationError
from cityhealth.simulation.polling import wait_for_job
from tests.simulation.fakes import START, Caller, completed, job_platform, running


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


async def test_the_wait_returns_the_completed_status_after_the_running_ones(clock: SimulatedClock) -> None:
    app = job_platform(iter([running(0), running(500), running(900), completed(1000)]))
    async with Actors() as actors:
        status = await wait_for_job(actors.add(Caller(app, clock)), "41", interval_s=0)
    assert status == {"id": "41", **completed(1000)}
    assert app.state.polls == 4


async def test_a_failed_job_fails_the_wait_with_its_error(clock: SimulatedClock) -> None:
    app = job_platform(iter([running(10), {"status": "failed", "rows_processed": 10, "error": "disk full"}]))
    async with Actors() as actors:
        with pytest.raises(SimulationError) as caught:
            await wait_for_job(actors.add(Caller(app, clock)), "7", interval_s=0)
    assert caught.value.code == "simulation_job_failed"
    assert caught.value.message == "test caller: bulk job 7 failed: disk full"


async def test_a_job_without_progress_is_given_up_after_the_stall_timeout(clock: SimulatedClock) -> None:
    app = job_platform(itertools.repeat(running(300)))
    async with Actors() as actors:
        caller = actors.add(Caller(app, clock))
        started = time.monotonic()
        with pytest.raises(SimulationError) as caught:
            async with asyncio.timeout(10):
                await wait_for_job(caller, "9", interval_s=0.01, stall_timeout_s=0.3)
        waited = time.monotonic() - started
    assert caught.value.code == "simulation_job_stalled"
    assert caught.value.message == ("test caller: bulk job 9 made no progress in 0.3 s "
                                    "(status running, 300 rows processed)")
    assert 0.3 <= waited < 5
    assert caller.http.is_closed


async def test_a_job_that_keeps_progressing_is_waited_for_longer_than_the_stall_timeout(clock: SimulatedClock) -> None:
    # 40 polls 10 ms apart (≥ 0.4 s in all), each with one more row: never 0.1 s without progress.
    app = job_platform(iter([*(running(rows) for rows in range(40)), completed(40)]))
    async with Actors() as actors:
        started = time.monotonic()
        status = await wait_for_job(actors.add(Caller(app, clock)), "3", interval_s=0.01, stall_timeout_s=0.1)
    assert time.monotonic() - started >= 0.4
    assert status["rows_processed"] == 40


async def test_a_queued_job_that_starts_counts_as_progress(clock: SimulatedClock) -> None:
    queued = {"status": "queued", "rows_processed": 0, "error": None}
    app = job_platform(iter([queued, queued, running(0), completed(5)]))
    async with Actors() as actors:
        status = await wait_for_job(actors.add(Caller(app, clock)), "5", interval_s=0, stall_timeout_s=10)
    assert status["status"] == "completed"
    assert app.state.polls == 4


async def test_a_poll_that_never_answers_times_out(clock: SimulatedClock) -> None:
    app = job_platform(iter([running(1), "hang"]))
    async with Actors() as actors:
        caller = actors.add(Caller(app, clock, timeout_s=0.2))
        with pytest.raises(SimulationError) as caught:
            async with asyncio.timeout(10):  # without the actor's timeout the wait would fail this one instead
                await wait_for_job(caller, "11", interval_s=0)
    assert caught.value.code == "simulation_timeout"
    assert caught.value.message == "test caller: GET /api/collection/jobs/11 did not answer within 0.2 s"
    assert caller.http.is_closed


async def test_a_poll_answered_by_a_crash_fails_the_wait(clock: SimulatedClock) -> None:
    app = job_platform(iter([running(1), "fail"]))
    async with Actors() as actors:
        caller = actors.add(Caller(app, clock))
        with pytest.raises(SimulationError) as caught:
            await wait_for_job(caller, "12", interval_s=0)
    assert caught.value.message.startswith("test caller: GET /api/collection/jobs/12 answered 500")
    assert caller.http.is_closed


async def test_a_wait_cancelled_mid_poll_stops_and_its_client_is_closed(clock: SimulatedClock) -> None:
    app = job_platform(iter([running(1), running(2), "hang"]))
    made: list[Caller] = []

    async def wait() -> None:
        async with Actors() as actors:
            made.append(actors.add(Caller(app, clock, timeout_s=60)))
            await wait_for_job(made[0], "13", interval_s=0)

    task = asyncio.create_task(wait())
    while app.state.polls < 3:  # the third poll is in flight, never to be answered
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made[0].http.is_closed
