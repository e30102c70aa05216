"""Group commit: a session's queued attempts decided in one transaction, each with its own answer.

The tests hold the leader at its batch lock until every attempt of the test has queued, so that one batch
(or a known sequence of batches) decides them; the answers are then checked, and the invariants read back
from the database.
"""


from collections import Counter
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import group_repository
from cityhealth.booking.idempotency import context_for
from cityhealth.booking.models import Booking, IdempotencyKey, MonthlyStat
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.models import Resident
from cityhealth.security.audit_verify import verify_chain
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


async def test_queued_attempts_are_decided_in_one_batch(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=30)
    people = await residents(database, settings, clock, range(30))
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [poster(client, headers, session["id"], n) for _, n in people])
    assert leader.batches == [30]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201] * 30
    # Every slot once; each response carries its own booking, made for the resident it named.
    assert sorted(r.json()["slot_no"] for r in responses) == list(range(1, 31))
    booked = await active_bookings(database, session["id"])
    assert sorted((b.id, b.resident_id) for b in booked) == sorted(
        (r.json()["id"], resident_id) for r, (resident_id, _) in zip(responses, people, strict=True))
    row = await session_row(database, session["id"])
    assert (row.booked, row.booked_online_12320, row.open_booked, row.slot_map) == (30, 30, 30, "1" * 30)
    assert await count(database, IdempotencyKey) == 30
    async with database.transaction() as tx:
        assert (await tx.execute(select(MonthlyStat.bookings))).scalar_one() == 30


async def test_each_booking_of_a_batch_is_audited_with_its_resident_and_request(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=10)
    people = await residents(database, settings, clock, range(6))
    headers = await headers_for(app, online_app(world))
    responses = await leader.decide(app, [poster(client, headers, session["id"], n) for _, n in people])
    assert leader.batches == [6]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    events = await booking_audit(database)
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
    (twice_id, twice), (_, other) = await residents(database, settings, clock, range(2))
    headers = await headers_for(app, online_app(world))
    third = await headers_for(app, third_party(world))
    responses = await leader.decide(app, [poster(client, headers, session["id"], twice),
                                          poster(client, third, session["id"], twice),
                                          poster(client, headers, session["id"], other)])
    assert leader.batches == [3]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201, (409, "same_department_day"), 201]
    assert [b.resident_id for b in await active_bookings(database, session["id"])].count(twice_id) == 1
    refusals = [e for e in await booking_audit(database) if e.outcome == "failure"]
    assert [(e.resident_id, e.detail, e.request_id) for e in refusals] == [
        (twice_id, "booking.one_per_department_day", responses[1].headers["x-request-id"])]


async def test_banned_capped_and_unknown_residents_do_not_fail_the_others(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=10)
    earlier = await publish(client, app, world, capacity=10, start=time(14, 0), end=time(17, 0))
    good, banned, capped, good_too = await residents(database, settings, clock, range(4))
    await ban(database, clock, banned[0])
    headers = await headers_for(app, online_app(world))
    assert (await book(client, app, online_app(world), earlier["id"], capped[1])).status_code == 201
    unknown_id, unknown = await add_resident(database, settings, clock.now(), 99)
    async with database.transaction() as tx:  # a number the master index no longer knows
        await tx.execute(update(Resident).where(Resident.id == unknown_id).values(is_active=False))
    responses = await leader.decide(app, [poster(client, headers, session["id"], n)
                                          for n in (good[1], banned[1], capped[1], unknown, good_too[1])])
    assert leader.batches == [5]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201, (403, "resident_banned"), (409, "same_department_day"),
                                 (404, "resident_not_found"), 201]
    assert sorted(b.resident_id for b in await active_bookings(database, session["id"])) == sorted(
        [good[0], good_too[0]])
    row = await session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (2, "11" + "0" * 8)
    failures = {(e.resident_id, e.outcome, e.detail) for e in await booking_audit(database)
                if e.outcome != "success"}
    assert {(banned[0], "failure", "booking.sanction"),
            (capped[0], "failure", "booking.one_per_department_day")} <= failures


async def test_a_batch_larger_than_the_slots_left_refuses_the_rest_before_reading_residents(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await publish(client, app, world, capacity=8)
    people = await residents(database, settings, clock, range(8))
    looked_up: list[int] = []
    identify = group_repository.identify

    async def counted(tx: AsyncSession, now: Any, ids: Any, hashes: Any, day: Any) -> Any:
        hashes = list(hashes)
        looked_up.append(len(hashes))
        return await identify(tx, now, ids, hashes, day)

    monkeypatch.setattr(group_repository, "identify", counted)
    headers = await headers_for(app, online_app(world))
    tasks = await leader.queue(app, [poster(client, headers, session["id"], n) for _, n in people])
    await take_slots_elsewhere(database, session["id"], booked=5, open_booked=5, booked_online_12320=5,
                                slot_map="11111000")
    leader.release()
    responses = await answers(tasks)
    assert leader.batches == [8]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201] * 3 + [(409, "sold_out")] * 5  # in queue order
    assert [r.json()["slot_no"] for r in responses[:3]] == [6, 7, 8]
    assert looked_up == [3]  # the five beyond the slots: no resident looked up for them …
    events = await booking_audit(database)
    assert [e.outcome for e in events] == ["success"] * 3  # … so no audit event is due


async def test_channel_quotas_hold_within_a_batch(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings, clock: SimulatedClock,
                                                  leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5, quotas={"third_party": 2})
    people = await residents(database, settings, clock, range(5))
    online = await headers_for(app, online_app(world))
    third = await headers_for(app, third_party(world))
    requests = [poster(client, third, session["id"], n) for _, n in people[:2]]
    requests += [poster(client, online, session["id"], n) for _, n in people[2:]]
    tasks = await leader.queue(app, requests)
    # One slot of the third party's quota and one of the open pool go elsewhere meanwhile.
    await take_slots_elsewhere(database, session["id"], booked=2, booked_third_party=1, booked_online_12320=1,
                                open_booked=1, slot_map="11000")
    leader.release()
    responses = await answers(tasks)
    assert leader.batches == [5]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201, (409, "quota_exhausted"), 201, 201, (409, "sold_out")]
    assert [r.json()["slot_no"] for r in responses if r.status_code == 201] == [3, 4, 5]
    row = await session_row(database, session["id"])
    assert (row.booked, row.booked_third_party, row.booked_online_12320, row.open_booked) == (5, 2, 3, 3)
    async with database.transaction() as tx:
        rows = (await tx.execute(select(MonthlyStat.channel, MonthlyStat.bookings))).all()
    stats = {channel: bookings for channel, bookings in rows}
    assert stats == {"third_party": 1, "online_12320": 2}


async def test_a_key_committed_by_another_process_replays_inside_the_batch(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=5)
    (_, first), (_, second), (_, third) = await residents(database, settings, clock, range(3))
    principal = online_app(world)
    headers = await headers_for(app, principal)
    stored_body = '{"stored": "by another process"}'
    tasks = await leader.queue(app, [poster(client, headers, session["id"], n, key=key)
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
    replayed, reused, fresh = await answers(tasks)
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
    people = await residents(database, settings, clock, range(3))
    banned_id, banned = await add_resident(database, settings, clock.now(), 3)
    await ban(database, clock, banned_id)
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
    responses = await leader.decide(app, [poster(client, headers, session["id"], n)
                                          for n in [*(n for _, n in people), banned]])
    # The batch rolled back; each attempt was then decided again, in a batch of its own.
    assert (leader.batches, leader.failed) == ([4, 1, 1, 1, 1], 1)
    assert codes(responses) == [201, 201, 201, (403, "resident_banned")]
    after = await row_counts(database)
    assert after["bookings"] == before["bookings"] + 3
    assert after["booking_idempotency_keys"] == before["booking_idempotency_keys"] + 3
    assert after["booking_resident_days"] == before["booking_resident_days"] + 3  # none for the refusal
    row = await session_row(database, session["id"])
    assert (row.booked, row.slot_map) == (3, "1110")
    assert Counter(e.outcome for e in await booking_audit(database)) == {"success": 3, "failure": 1}
    assert (await verify_chain(database)).ok


async def test_holds_are_batched_too(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                                     settings: Settings, clock: SimulatedClock, leader: HeldLeader) -> None:
    session = await publish(client, app, world, capacity=4)
    people = await residents(database, settings, clock, range(3))
    requests = [poster(client, await headers_for(app, resident_principal(resident_id)), session["id"],
                        path="/api/booking/holds") for resident_id, _ in people]
    responses = await leader.decide(app, requests)
    assert leader.batches == [3]
    assert leader.failed == 0  # no batch failed: none was decided again attempt by attempt
    assert codes(responses) == [201] * 3
    assert {(r.json()["status"], r.json()["hold_expires_at"] is not None) for r in responses} == {("held", True)}
    async with database.transaction() as tx:
        holds = list((await tx.execute(select(Booking).where(Booking.status == "held"))).scalars())
    assert {h.hold_expires_at - clock.now() for h in holds} == {timedelta(minutes=15)}
    assert await count(database, MonthlyStat) == 0  # a hold counts when it is confirmed
    assert {e.detail for e in await booking_audit(database) if e.outcome == "success"} == {"hold"}
