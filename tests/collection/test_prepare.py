"""Batch preparation outside the database: the garbage collector's pauses, and the prepare processes' priority."""

from __future__ import annotations

import gc
import os

from cityhealth.clock import SimulatedClock
from cityhealth.collection.prepare import gc_paused
from cityhealth.collection.workers import ChunkTask, PreparePool
from cityhealth.config import Settings


def test_gc_pauses_nest_and_the_collector_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause ending (one job of two) does not resume it
    assert gc.isenabled()


async def test_prepare_processes_run_at_the_configured_lower_priority(
    settings: Settings, clock: SimulatedClock
) -> None:
    wanted = max(os.getpriority(os.PRIO_PROCESS, 0), 7)
    pool = PreparePool(settings.model_copy(update={"worker_nice": 7}), processes=1)
    try:
        prepared = await pool.prepare(ChunkTask(b"\n", 1, None, clock.now(), (), {}))
        assert prepared.positions == []
        processes = pool._pool()._processes  # the pool's own processes are what is checked
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in processes] == [wanted]
    finally:
        pool.close()
