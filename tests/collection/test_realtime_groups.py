"""Real-time batches of one unit written together (group commit): one transaction, each batch its own answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import batch_groups
from cityhealth.collection.models import RawPayload
from cityhealth.collection.realtime import MAX_GROUP_RECORDS, BatchGroups
from cityhealth.collection.repository import raw_payloads
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.collection.conftest import Unit, post_records, stored_count
from tests.factories.collection import make_record


async def _payloads(database: Database) -> list[str]:
    async with database.transaction() as session:
        return sorted((await session.execute(select(RawPayload.content_type))).scalars())


def _writer(unit: Unit, clock: SimulatedClock, label: str, sessions: list[AsyncSession],
            gate: asyncio.Event | None = None, fail: bool = False) -> Any:
    async def work(session: AsyncSession) -> str:
        sessions.append(session)
        if gate is not None:
            await gate.wait()
        await raw_payloads.add_raw_payload(session, unit.org.id, clock.now(), label, b"x", 1)
        if fail:
            raise ValueError(f"batch {label} is broken")
        return label

    return work


async def test_batches_waiting_for_their_unit_share_one_transaction(
    database: Database, hospital: Unit, clock: SimulatedClock
) -> None:
    groups = BatchGroups(database)
    gate = asyncio.Event()
    sessions: list[AsyncSession] = []
    first = asyncio.create_task(groups.write(hospital.org.id, 10, _writer(hospital, clock, "b0", sessions, gate)))
    await asyncio.sleep(0)
    while not sessions:  # the first batch is being written, holding the unit
        await asyncio.sleep(0.01)
    later = [asyncio.create_task(groups.write(hospital.org.id, 10, _writer(hospital, clock, f"b{i}", sessions)))
             for i in range(1, 6)]
    await asyncio.sleep(0.05)
    gate.set()
    answers = await asyncio.gather(first, *later)
    assert answers == ["b0", "b1", "b2", "b3", "b4", "b5"]
    assert (groups.groups_written, groups.batches_written) == (2, 6)
    assert len({id(session) for session in sessions[1:]}) == 1  # the five waiting batches: one transaction
    assert sessions[0] is not sessions[1]
    assert await _payloads(database) == ["b0", "b1", "b2", "b3", "b4", "b5"]
    assert groups.commit.idle  # nothing left waiting


async def test_a_failing_batch_is_answered_alone_and_the_rest_of_its_group_is_written(
    database: Database, hospital: Unit, clock: SimulatedClock
) -> None:
    groups = BatchGroups(database)
    gate = asyncio.Event()
    sessions: list[AsyncSession] = []
    first = asyncio.create_task(groups.write(hospital.org.id, 1, _writer(hospital, clock, "a", sessions, gate)))
    while not sessions:
        await asyncio.sleep(0.01)
    good = asyncio.create_task(groups.write(hospital.org.id, 1, _writer(hospital, clock, "b", sessions)))
    bad = asyncio.create_task(groups.write(hospital.org.id, 1, _writer(hospital, clock, "c", sessions, fail=True)))
    last = asyncio.create_task(groups.write(hospital.org.id, 1, _writer(hospital, clock, "d", sessions)))
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == "a"
    assert await good == "b"
    with pytest.raises(ValueError, match="batch c is broken"):
        await bad
    assert await last == "d"
    # The group (b, c, d) was rolled back and each batch written alone: c's row is not stored, b's and d's once.
    assert await _payloads(database) == ["a", "b", "d"]


async def test_a_group_stops_growing_at_its_record_limit(database: Database) -> None:
    groups = BatchGroups(database)
    sizes: list[int] = []

    async def nothing(session: AsyncSession) -> None:
        return None

    write_group = groups._write_group

    async def counted(batch: Any) -> Any:
        sizes.append(len(batch.take()))
        return await write_group(batch)

    groups._write_group = counted  # type: ignore[method-assign]
    await asyncio.gather(*(groups.write(1, 1000, nothing) for _ in range(7)),
                         groups.write(1, MAX_GROUP_RECORDS + 1, nothing), groups.write(1, 1, nothing))
    # Five batches of 1,000 records fill a group; an oversized batch still goes, alone.
    assert sizes == [MAX_GROUP_RECORDS // 1000, 2, 1, 1]


async def test_concurrent_batches_of_one_unit_over_http(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock,
    database: Database,
) -> None:
    at = clock.now() - timedelta(hours=1)

    def batch(unit: Unit, first: int, size: int = 20, owner: Unit | None = None) -> list[dict[str, Any]]:
        return [make_record("outpatient_visit", (owner or unit).code, f"v-{first + i}", at) for i in range(size)]

    sends = [post_records(client, hospital, "outpatient_visit", batch(hospital, n * 100)) for n in range(12)]
    sends.append(post_records(client, hospital, "outpatient_visit", batch(hospital, 5000, owner=other_hospital)))
    sends.append(post_records(client, hospital, "outpatient_visit", batch(hospital, 0)))  # a re-send of batch 0
    responses = await asyncio.gather(*sends)
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 12 + [403, 200], [r.text for r in responses if r.status_code != 200]
    assert all(r.json()["counts"]["accepted"] == 20 for r in responses[1:12])
    # Batch 0 and its re-send: whichever reached the unit first is stored, the other is its duplicate.
    twins = sorted((r.json()["counts"]["accepted"], r.json()["counts"]["duplicate"]) for r in (responses[0],
                                                                                              responses[-1]))
    assert twins == [(0, 20), (20, 0)]
    assert responses[12].json()["code"] == "foreign_organization"
    assert await stored_count(database) == 240  # nothing of the refused batch
    # Each batch's audit event carries its own request's id.
    async with database.transaction() as session:
        audited = set((await session.execute(
            select(AuditEvent.request_id).where(AuditEvent.resource_type == "collection_batch"))).scalars())
        raw = (await session.execute(select(func.count()).select_from(RawPayload))).scalar_one()
    assert audited == {r.headers["x-request-id"] for r in responses if r.status_code == 200}
    assert raw == 13
    assert batch_groups(app).commit.idle


async def test_a_deactivated_unit_stops_uploading_once_its_cached_registry_row_is_stale(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    from sqlalchemy import update

    from cityhealth.collection.realtime import SENDER_CACHE_S
    from cityhealth.registry.models import Organization

    def one(rid: str) -> list[dict[str, Any]]:
        return [make_record("outpatient_visit", hospital.code, rid, clock.now() - timedelta(hours=1))]

    assert (await post_records(client, hospital, "outpatient_visit", one("v-1"))).status_code == 200
    async with database.transaction() as session:
        yesterday = clock.now().date() - timedelta(days=1)
        await session.execute(
            update(Organization).where(Organization.id == hospital.org.id).values(active_to=yesterday))
    clock.advance(timedelta(seconds=SENDER_CACHE_S - 1))
    assert (await post_records(client, hospital, "outpatient_visit", one("v-2"))).status_code == 200  # cached
    clock.advance(timedelta(seconds=2))
    refused = await post_records(client, hospital, "outpatient_visit", one("v-3"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "organization_unknown"
    assert await stored_count(database) == 2
