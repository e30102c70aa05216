"""What the group-commit tests share: a leader held at its batch lock until the test's attempts have queued,
posting attempts, and reading back what the batches wrote."""


import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import group_commit, group_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.models import BookingSession, Sanction
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.factories.booking import (
    add_resident,
)

BOOK = "/api/booking/bookings"


class HeldLeader:
    """Once `hold()` is called, the leader waits at its batch lock until `release()`; the size of every
    batch since is recorded, and every batch that failed (its attempts then decided one by one) is counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released = asyncio.Event()
        self.released.set()
        self.batches: list[int] = []
        self.failed = 0
        lock_batch, try_lock_keys = group_repository.lock_batch, group_repository.try_lock_keys
        decide_batch = group_commit.decide_batch

        async def held(tx: AsyncSession, session_id: int) -> None:
            await self.released.wait()
            await lock_batch(tx, session_id)

        async def counted(tx: AsyncSession, contexts: list[Any]) -> list[bool]:
            self.batches.append(len(contexts))
            return await try_lock_keys(tx, contexts)

        async def observed(*args: Any) -> Any:
            try:
                return await decide_batch(*args)
            except Exception:
                self.failed += 1
                raise

        monkeypatch.setattr(group_repository, "lock_batch", held)
        monkeypatch.setattr(group_repository, "try_lock_keys", counted)
        monkeypatch.setattr("cityhealth.booking.service.decide_batch", observed)

    async def decide(self, app: FastAPI,
                     requests: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
        """Queue the requests in their order, then let the leader decide them."""
        tasks = await self.queue(app, requests)
        self.release()
        return await answers(tasks)

    async def queue(self, app: FastAPI, requests: list[Callable[[], Awaitable[httpx.Response]]],
                    ) -> list[asyncio.Task[httpx.Response]]:
        """Hold the leader and send the requests one by one, each once the one before has queued."""
        self.hold()
        tasks: list[asyncio.Task[httpx.Response]] = []
        for request in requests:
            tasks.append(asyncio.create_task(request()))
            await until(lambda: runtime(app).committer.queued() == len(tasks), tasks)
        return tasks

    def hold(self) -> None:
        if self.released.is_set():
            self.released.clear()
            self.batches = []

    def release(self) -> None:
        self.released.set()


async def answers(tasks: list[asyncio.Task[httpx.Response]]) -> list[httpx.Response]:
    """The responses, in request order; an attempt left undecided fails the test instead of hanging it."""
    return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))


def runtime(app: FastAPI) -> BookingRuntime:
    runtime: BookingRuntime | None = getattr(app.state, "booking_runtime", None)
    return runtime or BookingRuntime()


async def until(condition: Callable[[], bool], tasks: list[asyncio.Task[httpx.Response]]) -> None:
    for _ in range(1000):
        if condition():
            return
        done = [task for task in tasks if task.done()]
        assert not done, f"a request finished before the batch was released: {done[0].result().text}"
        await asyncio.sleep(0.01)
    raise AssertionError("the attempts did not queue")


def poster(client: httpx.AsyncClient, headers: dict[str, str], session_id: int, id_number: str | None = None,
            *, key: str | None = None, path: str = BOOK) -> Callable[[], Awaitable[httpx.Response]]:
    payload: dict[str, Any] = {"session_id": session_id}
    if id_number is not None:
        payload["id_number"] = id_number

    async def post() -> httpx.Response:
        return await client.post(path, json=payload, headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex})

    return post


async def residents(database: Database, settings: Settings, clock: SimulatedClock,
                     seqs: range) -> list[tuple[int, str]]:
    return [await add_resident(database, settings, clock.now(), seq) for seq in seqs]


async def ban(database: Database, clock: SimulatedClock, resident_id: int) -> None:
    async with database.transaction() as tx:
        tx.add(Sanction(resident_id=resident_id, rule="no_show", no_show_count=3, starts_at=clock.now(),
                        ends_at=clock.now() + timedelta(days=90), created_at=clock.now()))


async def session_row(database: Database, session_id: int) -> BookingSession:
    async with database.transaction() as tx:
        row = await tx.get(BookingSession, session_id)
        assert row is not None
        return row


async def booking_audit(database: Database) -> list[AuditEvent]:
    async with database.transaction() as tx:
        return list((await tx.execute(select(AuditEvent).where(AuditEvent.resource_type == "booking")
                                      .order_by(AuditEvent.id))).scalars())


async def take_slots_elsewhere(database: Database, session_id: int, **counters: Any) -> None:
    """Another process's attempts take slots while this one's wait for their batch (counters and map)."""
    async with database.transaction() as tx:
        await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(**counters))


def codes(responses: list[httpx.Response]) -> list[object]:
    return [r.status_code if r.status_code == 201 else (r.status_code, r.json()["code"]) for r in responses]
