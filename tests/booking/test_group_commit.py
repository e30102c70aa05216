"""Group commit: a session's queued attempts decided in one transaction, each with its own answer.

The tests hold the leader at its batch lock until every attempt of the test has queued, so that one batch
(or a known sequence of batches) decides them; the answers are then checked, and the invariants read back
from the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import group_commit, group_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.idempotency import context_for
from cityhealth.booking.models import Booking, BookingSession, IdempotencyKey, MonthlyStat, ResidentDay, Sanction
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.models import Resident
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.models import AuditEvent
from tests.conftest import BACKEND
from tests.factories.booking import (
    World,
    active_bookings,
    add_resident,
    book,
    count,
    online_app,
    publish,
    resident_principal,
    row_counts,
    third_party,
)
from tests.factories.security import headers_for

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
        return await _answers(tasks)

    async def queue(self, app: FastAPI, requests: list[Callable[[], Awaitable[httpx.Response]]],
                    ) -> list[asyncio.Task[httpx.Response]]:
        """Hold the leader and send the requests one by one, each once the one before has queued."""
        self.hold()
        tasks: list[asyncio.Task[httpx.Response]] = []
        for request in requests:
            tasks.append(asyncio.create_task(request()))
            await _until(lambda: _runtime(app).committer.queued() == len(tasks), tasks)
        return tasks

    def hold(self) -> None:
        if self.released.is_set():
            self.released.clear()
            self.batches = []

    def release(self) -> None:
        self.released.set()


async def _answers(tasks: list[asyncio.Task[httpx.Response]]) -> list[httpx.Response]:
    """The responses, in request order; an attempt left undecided fails the test instead of hanging it."""
    return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))


def _runtime(app: FastAPI) -> BookingRuntime:
    runtime: BookingRuntime | None = getattr(app.state, "booking_runtime", None)
    return runtime or BookingRuntime()


async def _until(condition: Callable[[], bool], tasks: list[asyncio.Task[httpx.Response]]) -> None:
    for _ in range(1000):
        if condition():
            return
        done = [task for task in tasks if task.done()]
        assert not done, f"a request finished before the batch was released: {done[0].result().text}"
        await asyncio.sleep(0.01)
    raise AssertionError("the attempts did not queue")


@pytest.fixture
def leader(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldLeader]:
    held = HeldLeader(monkeypatch)
    yield held
    held.release()  # a failed test must not leave the leader waiting: the app's shutdown waits for it


def _poster(client: httpx.AsyncClient, headers: dict[str, str], session_id: int, id_number: str | None = None,
            *, key: str | None = None, path: str = BOOK) -> Callable[[], Awaitable[httpx.Response]]:
    payload: dict[str, Any] = {"session_id": session_id}
    if id_number is not None:
        payload["id_number"] = id_number

    async def post() -> httpx.Response:
        return await client.post(path, json=payload, headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex})

    return post


async def _residents(database: Database, settings: Settings, clock: SimulatedClock,
                     seqs: range) -> list[tuple[int, str]]:
    return [await add_resident(database, settings, clock.now(), seq) for seq in seqs]


async def _ban(database: Database, clock: SimulatedClock, resident_id: int) -> None:
    async with database.transaction() as tx:
        tx.add(Sanction(resident_id=resident_id, rule="no_show", no_show_count=3, starts_at=clock.now(),
                        ends_at=clock.now() + timedelta(days=90), created_at=clock.now()))


async def _session_row(database: Database, session_id: int) -> BookingSession:
    async with database.transaction() as tx:
        row = await tx.get(BookingSession, session_id)
        assert row is not None
        return row


async def _booking_audit(database: Database) -> list[AuditEvent]:
    async with database.transaction() as tx:
        return list((await tx.execute(select(AuditEvent).where(AuditEvent.resource_type == "booking")
                                      .order_by(AuditEvent.id))).scalars())


async def _take_slots_elsewhere(database: Database, session_id: int, **counters: Any) -> None:
    """Another process's attempts take slots while this one's wait for their batch (counters and map)."""
    async with database.transaction() as tx:
        await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(**counters))


def _codes(responses: list[httpx.Response]) -> list[object]:
    return [r.status_code if r.status_code == 201 else (r.status_code, r.json()["code"]) for r in responses]


async def test_queued_attempts_are_decided_in_one_batch(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=30)
    people = await _residents(database, settings, clock, range(30))
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], n) for _, n in people])
    assert leader.batches == [30]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201] * 30
    # Every slot once; each response carries its own booking, made for the resident it named.
    assert sorted(r.json()["slot_no"] for r in responses) == list(range(1, 31))
    booked = await active_bookings(database, session["id"])
    assert sorted((b.id, b.resident_id) for b in booked) == sorted(
        (r.json()["id"], resident_id) for r, (resident_id, _) in zip(responses, people, strict=True))
    row = await _session_row(database, session["id"])
    assert (row.booked, row.booked_online_12320, row.open_booked, row.slot_map) == (30, 30, 30, "1" * 30)
    assert await count(database, IdempotencyKey) == 30
    async with database.transaction() as tx:
        assert (await tx.execute(select(MonthlyStat.bookings))).scalar_one() == 30


async def test_each_booking_of_a_batch_is_audited_with_its_resident_and_request(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=10)
    people = await _residents(database, settings, clock, range(6))
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], n) for _, n in people])
    assert leader.batches == [6]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    events = await _booking_audit(database)
    assert [(e.action, e.outcome, e.detail) for e in events] == [("create", "success", None)] * 6
    assert {(e.resource_id, e.resident_id, e.request_id) for e in events} == {
        (str(r.json()["id"]), resident_id, r.headers["x-request-id"])
        for r, (resident_id, _) in zip(responses, people, strict=True)}
    assert (await verify_chain(database)).ok  # six events appended in one go still chain one by one


async def test_the_same_resident_twice_in_a_batch_gets_one_booking(client: httpx.AsyncClient, app: FastAPI,
                                                                   world: World, database: Database,
                                                                   settings: Settings, clock: SimulatedClock,
                                                                   leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5)
    (twice_id, twice), (_, other) = await _residents(database, settings, clock, range(2))
    headers = await headers_for(app, online_app(world))
    third = await headers_for(app, third_party(world))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], twice),
                                          _poster(client, third, session["id"], twice),
                                          _poster(client, headers, session["id"], other)])
    assert leader.batches == [3]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201, (409, "same_department_day"), 201]
    assert [b.resident_id for b in await active_bookings(database, session["id"])].count(twice_id) == 1
    refusals = [e for e in await _booking_audit(database) if e.outcome == "failure"]
    assert [(e.resident_id, e.detail, e.request_id) for e in refusals] == [
        (twice_id, "booking.one_per_department_day", responses[1].headers["x-request-id"])]


async def test_banned_capped_and_unknown_residents_do_not_fail_the_others(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=10)
    earlier = await publish(client, app, world, capacity=10, start=time(14, 0), end=time(17, 0))
    good, banned, capped, good_too = await _residents(database, settings, clock, range(4))
    await _ban(database, clock, banned[0])
    headers = await headers_for(app, online_app(world))
    assert (await book(client, app, online_app(world), earlier["id"], capped[1])).status_code == 201
    unknown_id, unknown = await add_resident(database, settings, clock.now(), 99)
    async with database.transaction() as tx:  # a number the master index no longer knows
        await tx.execute(update(Resident).where(Resident.id == unknown_id).values(is_active=False))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], n)
                                          for n in (good[1], banned[1], capped[1], unknown, good_too[1])])
    assert leader.batches == [5]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201, (403, "resident_banned"), (409, "same_department_day"),
                                 (404, "resident_not_found"), 201]
    assert sorted(b.resident_id for b in await active_bookings(database, session["id"])) == sorted(
        [good[0], good_too[0]])
    row = await _session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (2, "11" + "0" * 8)
    failures = {(e.resident_id, e.outcome, e.detail) for e in await _booking_audit(database)
                if e.outcome != "success"}
    assert {(banned[0], "failure", "booking.sanction"),
            (capped[0], "failure", "booking.one_per_department_day")} <= failures


async def test_a_batch_larger_than_the_slots_left_refuses_the_rest_before_reading_residents(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=8)
    people = await _residents(database, settings, clock, range(8))
    looked_up: list[int] = []
    identify = group_repository.identify

    async def counted(tx: AsyncSession, now: Any, ids: Any, hashes: Any, day: Any) -> Any:
        hashes = list(hashes)
        looked_up.append(len(hashes))
        return await identify(tx, now, ids, hashes, day)

    monkeypatch.setattr(group_repository, "identify", counted)
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], n) for _, n in people])
    await _take_slots_elsewhere(database, session["id"], booked=5, open_booked=5, booked_online_12320=5,
                                slot_map="11111000")
    leader.release()
    responses = await _answers(tasks)
    assert leader.batches == [8]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201] * 3 + [(409, "sold_out")] * 5  # in queue order
    assert [r.json()["slot_no"] for r in responses[:3]] == [6, 7, 8]
    assert looked_up == [3]  # the five beyond the slots: no resident looked up for them …
    events = await _booking_audit(database)
    assert [e.outcome for e in events] == ["success"] * 3  # … so no audit event is due


async def test_channel_quotas_hold_within_a_batch(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings, clock: SimulatedClock,
                                                  leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5, quotas={"third_party": 2})
    people = await _residents(database, settings, clock, range(5))
    online = await headers_for(app, online_app(world))
    third = await headers_for(app, third_party(world))
    requests = [_poster(client, third, session["id"], n) for _, n in people[:2]]
    requests += [_poster(client, online, session["id"], n) for _, n in people[2:]]
    tasks = await leader.queue(app, requests)
    # One slot of the third party's quota and one of the open pool go elsewhere meanwhile.
    await _take_slots_elsewhere(database, session["id"], booked=2, booked_third_party=1, booked_online_12320=1,
                                open_booked=1, slot_map="11000")
    leader.release()
    responses = await _answers(tasks)
    assert leader.batches == [5]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201, (409, "quota_exhausted"), 201, 201, (409, "sold_out")]
    assert [r.json()["slot_no"] for r in responses if r.status_code == 201] == [3, 4, 5]
    row = await _session_row(database, session["id"])
    assert (row.booked, row.booked_third_party, row.booked_online_12320, row.open_booked) == (5, 2, 3, 3)
    async with database.transaction() as tx:
        rows = (await tx.execute(select(MonthlyStat.channel, MonthlyStat.bookings))).all()
    stats = {channel: bookings for channel, bookings in rows}
    assert stats == {"third_party": 1, "online_12320": 2}


async def test_a_key_committed_by_another_process_replays_inside_the_batch(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5)
    (_, first), (_, second), (_, third) = await _residents(database, settings, clock, range(3))
    principal = online_app(world)
    headers = await headers_for(app, principal)
    stored_body = '{"stored": "by another process"}'
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], n, key=key)
                               for n, key in ((first, "replayed"), (second, "reused"), (third, "fresh"))])
    # While the batch waits, other processes commit requests made with two of these keys: one with the
    # same payload (a retry), one with another payload (a reused key).
    async with database.transaction() as tx:
        for key, number in (("replayed", first), ("reused", third)):
            idem = context_for(principal.subject, key, "POST", BOOK,
                               f'{{"session_id": {session["id"]}, "id_number": "{number}"}}'.encode())
            await tx.execute(insert(IdempotencyKey).values(
                subject=idem.subject, key=idem.key, fingerprint=idem.fingerprint, response_status=201,
                response_body=stored_body, created_at=clock.now(), expires_at=clock.now() + timedelta(hours=24)))
    leader.release()
    replayed, reused, fresh = await _answers(tasks)
    assert leader.batches == [3]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert (replayed.status_code, replayed.text, replayed.headers.get("Idempotent-Replayed")) == (
        201, stored_body, "true")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert fresh.status_code == 201
    assert [b.id for b in await active_bookings(database, session["id"])] == [fresh.json()["id"]]


async def test_a_database_error_in_a_batch_decides_its_attempts_one_by_one(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=4)
    people = await _residents(database, settings, clock, range(3))
    banned_id, banned = await add_resident(database, settings, clock.now(), 3)
    await _ban(database, clock, banned_id)
    before = await row_counts(database)
    write_batch = group_repository.write_batch
    calls = 0

    async def failing(tx: AsyncSession, clock_: Any, writes: group_repository.BatchWrites) -> None:
        nonlocal calls
        calls += 1
        await write_batch(tx, clock_, writes)
        if calls > 1:
            return
        # Everything is written; now the unique-index backstop fires, as it would on a slot or key taken
        # behind the batch's back.
        context, body = writes.responses[0]
        await tx.execute(insert(IdempotencyKey).values(
            subject=context.subject, key=context.key, fingerprint=context.fingerprint, response_status=201,
            response_body=body, created_at=clock.now(), expires_at=clock.now()))

    monkeypatch.setattr(group_repository, "write_batch", failing)
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], n)
                                          for n in [*(n for _, n in people), banned]])
    # The batch rolled back; each attempt was then decided again, in a batch of its own.
    assert (leader.batches, leader.failed) == ([4, 1, 1, 1, 1], 1)
    assert _codes(responses) == [201, 201, 201, (403, "resident_banned")]
    after = await row_counts(database)
    assert after["bookings"] == before["bookings"] + 3
    assert after["booking_idempotency_keys"] == before["booking_idempotency_keys"] + 3
    assert after["booking_resident_days"] == before["booking_resident_days"] + 3  # none for the refusal
    row = await _session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (3, "1110")
    assert Counter(e.outcome for e in await _booking_audit(database)) == {"success": 3, "failure": 1}
    assert (await verify_chain(database)).ok


async def test_holds_are_batched_too(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                                     settings: Settings, clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=4)
    people = await _residents(database, settings, clock, range(3))
    requests = [_poster(client, await headers_for(app, resident_principal(resident_id)), session["id"],
                        path="/api/booking/holds") for resident_id, _ in people]
    responses = await leader.decide(app, requests)
    assert leader.batches == [3]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert _codes(responses) == [201] * 3
    assert {(r.json()["status"], r.json()["hold_expires_at"] is not None) for r in responses} == {("held", True)}
    async with database.transaction() as tx:
        holds = list((await tx.execute(select(Booking).where(Booking.status == "held"))).scalars())
    assert {h.hold_expires_at - clock.now() for h in holds} == {timedelta(minutes=15)}
    assert await count(database, MonthlyStat) == 0  # a hold counts when it is confirmed
    assert {e.detail for e in await _booking_audit(database) if e.outcome == "success"} == {"hold"}


async def test_a_refused_candidate_leaves_its_slot_to_the_next_attempt_in_the_queue(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=3)
    banned, good, behind = await _residents(database, settings, clock, range(3))
    await _ban(database, clock, banned[0])
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], n)
                                     for n in (banned[1], good[1], behind[1])])
    # Meanwhile another process books one slot: two are left for three queued attempts.
    await _take_slots_elsewhere(database, session["id"], booked=1, open_booked=1, booked_third_party=1,
                                slot_map="100")
    leader.release()
    responses = await _answers(tasks)
    assert _codes(responses) == [(403, "resident_banned"), 201, 201]
    assert leader.batches == [3, 1]  # the one behind the cut went to the next batch, at the head of the queue
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    row = await _session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (3, "111")


async def test_an_attempt_beyond_the_claimed_slots_waits_for_their_outcome_then_is_refused(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=2)
    people = await _residents(database, settings, clock, range(3))
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], n) for _, n in people[:2]])
    late = asyncio.create_task(_poster(client, headers, session["id"], people[2][1])())
    await asyncio.sleep(0.05)
    assert not late.done()  # both slots are claimed, not taken: a claimed attempt may still lose
    leader.release()
    assert _codes(await _answers([*tasks, late])) == [201, 201, (409, "sold_out")]
    assert leader.batches == [2]  # refused by the gate once the batch took both, not by a batch of its own


async def test_a_slot_a_claimed_attempt_loses_goes_to_the_attempt_waiting_behind_it(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=2)
    (_, twice), (_, other) = await _residents(database, settings, clock, range(2))
    headers = await headers_for(app, online_app(world))
    # The same resident twice claims both slots; the second loses to the per-department daily cap.
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], twice) for _ in range(2)])
    late = asyncio.create_task(_poster(client, headers, session["id"], other)())
    await asyncio.sleep(0.05)
    assert not late.done()
    leader.release()
    assert _codes(await _answers([*tasks, late])) == [201, (409, "same_department_day"), 201]
    booked = await active_bookings(database, session["id"])
    assert sorted(b.slot_no for b in booked) == [1, 2]


async def test_an_attempt_that_loses_its_slot_under_the_lock_leaves_no_day_row(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=2)
    (winner_id, winner), (loser_id, loser) = await _residents(database, settings, clock, range(2))
    lock_day_and_pool = group_repository.lock_day_and_pool

    async def overtaken(tx: AsyncSession, session_id: int, *args: Any, **kwargs: Any) -> Any:
        # A writer that is not a batch (a reschedule, a waitlist offer) takes a slot after the
        # batch's plain read and before its row lock: the residents are identified, their days locked.
        await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(
            booked=1, open_booked=1, booked_phone=1, slot_map="10"))
        return await lock_day_and_pool(tx, session_id, *args, **kwargs)

    monkeypatch.setattr(group_repository, "lock_day_and_pool", overtaken)
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [_poster(client, headers, session["id"], n) for n in (winner, loser)])
    assert _codes(responses) == [201, (409, "sold_out")]
    async with database.transaction() as tx:
        days = list((await tx.execute(select(ResidentDay.resident_id))).scalars())
    assert days == [winner_id]  # the loser's day row, created by the batch, is gone again
    failures = [(e.resident_id, e.detail) for e in await _booking_audit(database) if e.outcome == "failure"]
    assert failures == [(loser_id, "booking.sold_out")]  # identified, so its refusal is audited


async def test_queued_attempts_beyond_the_slots_left_are_refused_by_the_next_batch_unread(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=4)
    people = await _residents(database, settings, clock, range(4))
    inside, go_on = asyncio.Event(), asyncio.Event()
    try_lock_keys = group_repository.try_lock_keys

    async def paused(tx: AsyncSession, contexts: list[Any]) -> list[bool]:
        # The first batch has taken its attempt and read nothing yet (on SQLite it holds no lock yet).
        inside.set()
        await go_on.wait()
        return await try_lock_keys(tx, contexts)

    monkeypatch.setattr(group_repository, "try_lock_keys", paused)
    headers = await headers_for(app, online_app(world))
    first = await leader.queue(app, [_poster(client, headers, session["id"], people[0][1])])
    leader.release()
    try:
        await asyncio.wait_for(inside.wait(), 10)  # the first batch is under way with its one attempt …
        behind = await leader.queue(app, [_poster(client, headers, session["id"], n) for _, n in people[1:]])
        leader.release()  # … and three more queue behind it, while other processes take three slots
        await _take_slots_elsewhere(database, session["id"], booked=3, open_booked=3, booked_phone=3,
                                    slot_map="1110")
    finally:
        go_on.set()
    responses = await _answers([*first, *behind])
    assert _codes(responses) == [201, (409, "sold_out"), (409, "sold_out"), (409, "sold_out")]
    assert leader.batches == [1, 3]  # the next batch refuses the three by its plain read …
    assert leader.failed == 0
    assert [e.outcome for e in await _booking_audit(database)] == ["success"]  # … before reading anyone


@pytest.mark.skipif(BACKEND != "postgresql", reason="only PostgreSQL has other processes: SQLite serialises them")
async def test_a_key_running_in_another_process_is_refused_inside_the_batch(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5)
    (_, first), (_, second) = await _residents(database, settings, clock, range(2))
    principal = online_app(world)
    headers = await headers_for(app, principal)
    tasks = await leader.queue(app, [_poster(client, headers, session["id"], first, key="elsewhere"),
                                     _poster(client, headers, session["id"], second)])
    idem = context_for(principal.subject, "elsewhere", "POST", BOOK, b"{}")
    async with database.engine.connect() as other:  # another process runs a request with that key
        await other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": idem.advisory_key})
        leader.release()
        in_flight, booked = await _answers(tasks)
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
