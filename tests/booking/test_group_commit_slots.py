"""Group commit and the slots in flight: a slot a claimed attempt loses goes to the next one, attempts beyond
the claimed slots wait for their outcome, keys held by other processes, and warmed write connections."""


import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import group_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.idempotency import context_for
from cityhealth.booking.models import Booking, BookingSession, ResidentDay
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.booking.group_commit_support import (
    BOOK,
    HeldLeader,
    answers,
    ban,
    booking_audit,
    codes,
    poster,
    residents,
    session_row,
    take_slots_elsewhere,
)
from tests.conftest import BACKEND
from tests.factories.booking import (
    World,
    active_bookings,
    count,
    online_app,
    publish,
)
from tests.factories.security import headers_for


async def test_a_refused_candidate_leaves_its_slot_to_the_next_attempt_in_the_queue(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=3)
    banned, good, behind = await residents(database, settings, clock, range(3))
    await ban(database, clock, banned[0])
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [poster(client, headers, session["id"], n)
                                     for n in (banned[1], good[1], behind[1])])
    # Meanwhile another process books one slot: two are left for three queued attempts.
    await take_slots_elsewhere(database, session["id"], booked=1, open_booked=1, booked_third_party=1,
                                slot_map="100")
    leader.release()
    responses = await answers(tasks)
    assert codes(responses) == [(403, "resident_banned"), 201, 201]
    assert leader.batches == [3, 1]  # the one behind the cut went to the next batch, at the head of the queue
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    row = await session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (3, "111")


async def test_an_attempt_beyond_the_claimed_slots_waits_for_their_outcome_then_is_refused(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=2)
    people = await residents(database, settings, clock, range(3))
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [poster(client, headers, session["id"], n) for _, n in people[:2]])
    late = asyncio.create_task(poster(client, headers, session["id"], people[2][1])())
    await asyncio.sleep(0.05)
    assert not late.done()  # both slots are claimed, not taken: a claimed attempt may still lose
    leader.release()
    assert codes(await answers([*tasks, late])) == [201, 201, (409, "sold_out")]
    assert leader.batches == [2]  # refused by the gate once the batch took both, not by a batch of its own


async def test_a_slot_a_claimed_attempt_loses_goes_to_the_attempt_waiting_behind_it(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=2)
    (_, twice), (_, other) = await residents(database, settings, clock, range(2))
    headers = await headers_for(app, online_app(world))
    # The same resident twice claims both slots; the second loses to the per-department daily cap.
    tasks = await leader.queue(app, [poster(client, headers, session["id"], twice) for _ in range(2)])
    late = asyncio.create_task(poster(client, headers, session["id"], other)())
    await asyncio.sleep(0.05)
    assert not late.done()
    leader.release()
    assert codes(await answers([*tasks, late])) == [201, (409, "same_department_day"), 201]
    booked = await active_bookings(database, session["id"])
    assert sorted(b.slot_no for b in booked) == [1, 2]


async def test_an_attempt_that_loses_its_slot_under_the_lock_leaves_no_day_row(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=2)
    (winner_id, winner), (loser_id, loser) = await residents(database, settings, clock, range(2))
    lock_day_and_pool = group_repository.lock_day_and_pool

    async def overtaken(tx: AsyncSession, session_id: int, *args: Any, **kwargs: Any) -> Any:
        # A writer that is not a batch (a reschedule, a waitlist offer) takes a slot after the
        # batch's plain read and before its row lock: the residents are identified, their days locked.
        await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(
            booked=1, open_booked=1, booked_phone=1, slot_map="10"))
        return await lock_day_and_pool(tx, session_id, *args, **kwargs)

    monkeypatch.setattr(group_repository, "lock_day_and_pool", overtaken)
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [poster(client, headers, session["id"], n) for n in (winner, loser)])
    assert codes(responses) == [201, (409, "sold_out")]
    async with database.transaction() as tx:
        days = list((await tx.execute(select(ResidentDay.resident_id))).scalars())
    assert days == [winner_id]  # the loser's day row, created by the batch, is gone again
    failures = [(e.resident_id, e.detail) for e in await booking_audit(database) if e.outcome == "failure"]
    assert failures == [(loser_id, "booking.sold_out")]  # identified, so its refusal is audited


async def test_queued_attempts_beyond_the_slots_left_are_refused_by_the_next_batch_unread(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=4)
    people = await residents(database, settings, clock, range(4))
    inside, go_on = asyncio.Event(), asyncio.Event()
    try_lock_keys = group_repository.try_lock_keys

    async def paused(tx: AsyncSession, contexts: list[Any]) -> list[bool]:
        # The first batch has taken its attempt and read nothing yet (on SQLite it holds no lock yet).
        inside.set()
        await go_on.wait()
        return await try_lock_keys(tx, contexts)

    monkeypatch.setattr(group_repository, "try_lock_keys", paused)
    headers = await headers_for(app, online_app(world))
    first = await leader.queue(app, [poster(client, headers, session["id"], people[0][1])])
    leader.release()
    try:
        await asyncio.wait_for(inside.wait(), 10)  # the first batch is under way with its one attempt …
        behind = await leader.queue(app, [poster(client, headers, session["id"], n) for _, n in people[1:]])
        leader.release()  # … and three more queue behind it, while other processes take three slots
        await take_slots_elsewhere(database, session["id"], booked=3, open_booked=3, booked_phone=3,
                                    slot_map="1110")
    finally:
        go_on.set()
    responses = await answers([*first, *behind])
    assert codes(responses) == [201, (409, "sold_out"), (409, "sold_out"), (409, "sold_out")]
    assert leader.batches == [1, 3]  # the next batch refuses the three by its plain read …
    assert leader.failed == 0
    assert [e.outcome for e in await booking_audit(database)] == ["success"]  # … before reading anyone


@pytest.mark.skipif(BACKEND != "postgresql", reason="only PostgreSQL has other processes: SQLite serialises them")
async def test_a_key_running_in_another_process_is_refused_inside_the_batch(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5)
    (_, first), (_, second) = await residents(database, settings, clock, range(2))
    principal = online_app(world)
    headers = await headers_for(app, principal)
    tasks = await leader.queue(app, [poster(client, headers, session["id"], first, key="elsewhere"),
                                     poster(client, headers, session["id"], second)])
    idem = context_for(principal.subject, "elsewhere", "POST", BOOK, b"{}")
    async with database.engine.connect() as other:  # another process runs a request with that key
        await other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": idem.advisory_key})
        leader.release()
        in_flight, booked = await answers(tasks)
        await other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": idem.advisory_key})
    assert (in_flight.status_code, in_flight.json()["code"]) == (409, "idempotency_key_in_flight")
    assert booked.status_code == 201
    assert leader.failed == 0
    assert await count(database, Booking) == 1


async def test_warming_opens_the_write_connections_with_every_batch_statement(database: Database) -> None:
    runtime = BookingRuntime()
    try:
        await runtime.warm(database)  # runs each batch statement once on every connection: any SQL error fails
        if database.is_sqlite:
            assert (runtime.read_pool, runtime.write_engine) == (None, None)  # nothing to open in-process
        else:
            assert runtime.write_engine is not None
            assert runtime.write_engine.engine.pool.checkedin() == runtime.write_engine.size  # type: ignore[attr-defined]
    finally:
        await runtime.close()
