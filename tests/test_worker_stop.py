"""The server's task worker (PostgreSQL) stops within seconds of the lifespan's end, however soon after the
start that end comes: the stop must not be lost while the worker is still starting."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi import FastAPI

from cityhealth import queue, worker
from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.conftest import BACKEND

STOPPED_WITHIN_S = 2.0


def _app(settings: Settings, database: Database, clock: SimulatedClock) -> FastAPI:
    # A short graceful timeout: a worker that misses its stop then holds the lifespan 6 s, not 15.
    return create_app(settings.model_copy(update={"worker_shutdown_timeout_s": 1}), database=database, clock=clock)


@pytest.mark.skipif(BACKEND != "postgresql", reason="the server runs a procrastinate worker on PostgreSQL only")
async def test_a_stop_that_lands_as_the_workers_pool_fills_is_not_lost(
    settings: Settings, database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's start waits with asyncio.wait_for, as psycopg_pool's open does for its connections; the
    # wait ends in the very loop iteration the lifespan ends in. On Python 3.11 a cancellation arriving then
    # is dropped by wait_for, which returns its result instead: a worker stopped by cancelling it ran on.
    reached, filled = asyncio.Event(), asyncio.Event()
    requeue_lost = worker.requeue_lost

    async def requeue_once_the_pool_is_full(runtime: queue.Runtime) -> Any:
        reached.set()
        await asyncio.wait_for(filled.wait(), 30)
        return await requeue_lost(runtime)

    monkeypatch.setattr(worker, "requeue_lost", requeue_once_the_pool_is_full)
    application = _app(settings, database, clock)
    async with application.router.lifespan_context(application):
        await asyncio.wait_for(reached.wait(), 30)
        filled.set()
        started = time.monotonic()
    assert time.monotonic() - started < STOPPED_WITHIN_S


async def test_the_task_worker_stops_promptly_after_lifespans_of_every_length(
    settings: Settings, database: Database, clock: SimulatedClock
) -> None:
    # The ends are spread over the worker's start (its pool, the requeueing of lost work, its registration
    # with the queue) and past it, where a real server's stop may land.
    slow: list[str] = []
    for cycle in range(16):
        application = _app(settings, database, clock)
        async with application.router.lifespan_context(application):
            await asyncio.sleep(0.02 + cycle * 0.008)
            started = time.monotonic()
        took = time.monotonic() - started
        if took > STOPPED_WITHIN_S:
            slow.append(f"lifespan {cycle}: stopped in {took:.1f} s")
    assert slow == []
