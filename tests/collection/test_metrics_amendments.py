"""The quality counters under amendments and revocations: after every step they equal a recount of the store.

A record is sent, re-sent unchanged, amended, revoked and sent again after its revocation, across days and
units; after each step the daily counters (per organization, form and Nanjing day), the monthly stored
totals and the conformance cells must be what a recount from the stored records and their versions gives,
and the bulletin's collection figures must follow the definitions of docs/domain.md.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import (
    Record,
    RecordVersion,
    RejectionCount,
)
from cityhealth.db.engine import Database
from tests.collection.amendments_support import (
    WINDOW,
    assert_counters_equal_a_recount,
    conformance,
    daily_counts,
    move_to,
    nanjing,
    send,
    stored_versions,
    visit,
)
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import make_record


async def test_a_new_record_is_received_accepted_and_stored_once(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    assert await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", clock.now() - timedelta(hours=1))) \
        == ["accepted"]
    counts = await daily_counts(database)
    assert counts == {(hospital.org.id, "outpatient_visit", date(2022, 6, 15)): {
        "received": 1, "accepted": 1, "amended": 0, "revoked": 0, "duplicate": 0, "rejected": 0, "flagged": 0}}
    await assert_counters_equal_a_recount(database)


async def test_a_record_resent_unchanged_is_a_duplicate_that_stores_nothing(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    for _ in range(3):
        assert await send(client, hospital, "outpatient_visit", record) == ["duplicate"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["received"], row["accepted"], row["duplicate"]) == (4, 1, 3)
    await assert_counters_equal_a_recount(database)


async def test_an_amendment_counts_on_its_own_day_and_leaves_the_first_day_alone(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    await move_to(app, clock, nanjing(16, 10), hospital)
    assert await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"}) == [
        "amended"]
    counts = await daily_counts(database)
    key15, key16 = ((hospital.org.id, "outpatient_visit", date(2022, 6, d)) for d in (15, 16))
    assert (counts[key15]["accepted"], counts[key15]["amended"]) == (1, 0)
    assert (counts[key16]["received"], counts[key16]["accepted"], counts[key16]["amended"]) == (1, 0, 1)
    await assert_counters_equal_a_recount(database)


async def test_an_amendment_resent_unchanged_is_a_duplicate(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    amended = {**record, "action": 2, "doctor_name": "周医生"}
    assert await send(client, hospital, "outpatient_visit", record) == ["accepted"]
    assert await send(client, hospital, "outpatient_visit", amended) == ["amended"]
    assert await send(client, hospital, "outpatient_visit", amended) == ["duplicate"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["accepted"], row["amended"], row["duplicate"]) == (1, 1, 1)
    await assert_counters_equal_a_recount(database)


async def test_a_revocation_resent_unchanged_is_a_duplicate(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    revoked = {**record, "action": 3}
    assert await send(client, hospital, "outpatient_visit", revoked) == ["revoked"]
    assert await send(client, hospital, "outpatient_visit", revoked) == ["duplicate"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["revoked"], row["duplicate"]) == (1, 1)
    await assert_counters_equal_a_recount(database)


async def test_the_original_resent_after_its_revocation_is_refused_and_counted_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})
    response = await post_records(client, hospital, "outpatient_visit", [record])
    answer = response.json()["records"][0]
    assert answer["status"] == "rejected"
    assert [(e["rule"], e["field"]) for e in answer["errors"]] == [("record.revoked", "action")]
    assert await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "晚"}) == [
        "rejected"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["received"], row["accepted"], row["revoked"], row["rejected"]) == (4, 1, 1, 2)
    async with database.transaction() as session:
        rejections = (await session.execute(select(RejectionCount))).scalars().all()
    assert [(r.rule, r.field, r.count) for r in rejections] == [("record.revoked", "action", 2)]
    async with database.transaction() as session:
        stored = (await session.execute(select(Record))).scalar_one()
    assert (stored.version, stored.action) == (2, 3)
    await assert_counters_equal_a_recount(database)


async def test_a_second_new_record_under_a_stored_id_is_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    response = await post_records(client, hospital, "outpatient_visit", [{**record, "doctor_name": "另一位"}])
    error = response.json()["records"][0]["errors"][0]
    assert (error["rule"], error["field"], error["value"]) == ("action.exists", "record_id", "v-1")
    await assert_counters_equal_a_recount(database)


async def test_a_revocation_of_an_unknown_record_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1), action=3)
    response = await post_records(client, hospital, "outpatient_visit", [record])
    error = response.json()["records"][0]["errors"][0]
    assert (error["rule"], error["value"]) == ("action.no_original", "3")
    assert await stored_versions(database) == []
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["received"], row["rejected"]) == (1, 1)


async def test_versions_keep_every_superseded_state_in_order(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    await move_to(app, clock, nanjing(15, 11), hospital)
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await move_to(app, clock, nanjing(15, 12), hospital)
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "吴医生"})
    await move_to(app, clock, nanjing(15, 13), hospital)
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})
    async with database.transaction() as session:
        older = (await session.execute(select(RecordVersion).order_by(RecordVersion.version))).scalars().all()
        current = (await session.execute(select(Record))).scalar_one()
    assert [(v.version, v.action) for v in older] == [(1, 1), (2, 2), (3, 2)]
    assert [v.superseded_at for v in older] == [nanjing(15, 11), nanjing(15, 12), nanjing(15, 13)]
    assert (current.version, current.action, current.first_received_at) == (4, 3, nanjing(15, 9, 30))
    await assert_counters_equal_a_recount(database)


# --- conformance under amendments and revocations -----------------------------------------------------------


async def test_an_on_time_record_conforms_until_it_is_amended(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=23))
    await send(client, hospital, "outpatient_visit", record)
    assert await conformance(database, hospital) == (1, 1)
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    assert await conformance(database, hospital) == (1, 0)
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "吴医生"})
    assert await conformance(database, hospital) == (1, 0)
    await assert_counters_equal_a_recount(database)


async def test_a_record_received_just_past_the_window_is_in_the_basis_only(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    on_edge = visit(hospital, "v-edge", clock.now() - WINDOW)
    late = visit(hospital, "v-late", clock.now() - WINDOW - timedelta(seconds=1))
    assert await send(client, hospital, "outpatient_visit", on_edge, late) == ["accepted", "accepted"]
    assert await conformance(database, hospital) == (2, 1)
    await assert_counters_equal_a_recount(database)


async def test_a_revoked_record_leaves_the_basis_and_its_conforming_share(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    on_time = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    late = visit(hospital, "v-2", clock.now() - timedelta(days=3))
    await send(client, hospital, "outpatient_visit", on_time, late)
    assert await conformance(database, hospital) == (2, 1)
    await send(client, hospital, "outpatient_visit", {**late, "action": 3})
    assert await conformance(database, hospital) == (1, 1)
    await send(client, hospital, "outpatient_visit", {**on_time, "action": 3})
    assert await conformance(database, hospital) == (0, 0)
    await assert_counters_equal_a_recount(database)


async def test_an_amended_then_revoked_record_is_taken_out_of_the_basis_once(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    other = visit(hospital, "v-2", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record, other)
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})  # a duplicate takes nothing more
    assert await conformance(database, hospital) == (1, 1)
    await assert_counters_equal_a_recount(database)


async def test_an_amendment_moving_the_event_keeps_the_basis_in_the_first_month(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await move_to(app, clock, nanjing(1, 3, month=7), hospital)
    record = visit(hospital, "v-1", nanjing(30, 22))  # June, five hours before: on time
    await send(client, hospital, "outpatient_visit", record)
    moved = visit(hospital, "v-1", nanjing(1, 1, month=7), action=2)
    assert await send(client, hospital, "outpatient_visit", moved) == ["amended"]
    assert await conformance(database, hospital, 202206) == (1, 0)
    assert await conformance(database, hospital, 202207) == (0, 0)
    async with database.transaction() as session:
        stored = (await session.execute(select(Record))).scalar_one()
    assert (stored.event_month, stored.conformance_month) == (202207, 202206)
    await assert_counters_equal_a_recount(database)


# --- rejections, batches and dry runs ----------------------------------------------------------------------


async def test_a_rejected_record_is_received_and_rejected_by_rule_and_field_not_stored(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    bad = visit(hospital, "v-1", clock.now() - timedelta(hours=1), patient_type_code="7", visit_no=None)
    assert await send(client, hospital, "outpatient_visit", bad) == ["rejected"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["received"], row["rejected"], row["accepted"]) == (1, 1, 0)
    async with database.transaction() as session:
        rejections = (await session.execute(select(RejectionCount).order_by(RejectionCount.rule))).scalars().all()
    assert [(r.form, r.rule, r.field, r.count) for r in rejections] == [
        ("outpatient_visit", "code.not_in_table", "patient_type_code", 1),
        ("outpatient_visit", "required", "visit_no", 1),
    ]
    assert await stored_versions(database) == []
    assert await conformance(database, hospital) == (0, 0)


async def test_list_positions_are_folded_in_the_rule_counters(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("prescription", hospital.code, "rx-1", clock.now() - timedelta(hours=1))
    item = record["items"][0]
    record["items"] = [{**item, "amount": -1}, item, {**item, "amount": -2}]
    body = (await post_records(client, hospital, "prescription", [record])).json()
    assert body["rejections_by_field"] == {"items[].amount": 2}
    async with database.transaction() as session:
        rows = (await session.execute(select(RejectionCount))).scalars().all()
    assert [(r.rule, r.field, r.count) for r in rows] == [("range.min", "items[].amount", 2)]


async def test_repeated_ids_in_one_batch_are_each_counted_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    statuses = await send(client, hospital, "outpatient_visit",
                          visit(hospital, "same", at), visit(hospital, "same", at), visit(hospital, "fine", at))
    assert statuses == ["rejected", "rejected", "accepted"]
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert (row["received"], row["accepted"], row["rejected"]) == (3, 1, 2)
    async with database.transaction() as session:
        rows = (await session.execute(select(RejectionCount))).scalars().all()
    assert [(r.rule, r.field, r.count) for r in rows] == [("record_id.duplicate_in_batch", "record_id", 2)]
    await assert_counters_equal_a_recount(database)


async def test_a_dry_run_changes_no_counter(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", at))
    before = await daily_counts(database)
    response = await post_records(client, hospital, "outpatient_visit",
                                  [visit(hospital, "v-1", at, action=3), visit(hospital, "v-2", at, visit_no=None)],
                                  dry_run="true")
    assert [r["status"] for r in response.json()["records"]] == ["revoked", "rejected"]
    assert await daily_counts(database) == before
    assert await conformance(database, hospital) == (1, 1)
    await assert_counters_equal_a_recount(database)


# --- units and forms are counted apart ----------------------------------------------------------------------


async def test_two_units_may_use_the_same_record_id_and_are_counted_apart(
    client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    assert await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", at)) == ["accepted"]
    assert await send(client, other_hospital, "outpatient_visit", visit(other_hospital, "v-1", at)) == ["accepted"]
    assert await send(client, other_hospital, "outpatient_visit", visit(other_hospital, "v-1", at, action=3)) == [
        "revoked"]
    counts = await daily_counts(database)
    assert counts[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]["revoked"] == 0
    assert counts[(other_hospital.org.id, "outpatient_visit", date(2022, 6, 15))]["revoked"] == 1
    assert await conformance(database, hospital) == (1, 1)
    assert await conformance(database, other_hospital) == (0, 0)
    await assert_counters_equal_a_recount(database)


async def test_the_same_record_id_in_two_forms_is_two_records(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    await send(client, hospital, "outpatient_visit", visit(hospital, "x-1", at))
    assert await send(client, hospital, "admission", make_record("admission", hospital.code, "x-1", at)) == [
        "accepted"]
    assert len(await stored_versions(database)) == 2
    await assert_counters_equal_a_recount(database)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counters_equal_a_recount_after_every_batch_of_a_random_history(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock,
    database: Database, seed: int,
) -> None:
    chooser = random.Random(seed)
    units = (hospital, other_hospital)
    forms = ("outpatient_visit", "discharge", "patient_master_index")
    events: dict[tuple[str, str, str], datetime] = {}
    last_sent: dict[tuple[str, str, str], dict[str, Any]] = {}  # the stored version of each key, as sent
    moment = nanjing(15, 10)
    seen: set[str] = set()
    for step in range(24):
        moment += timedelta(hours=chooser.choice([1, 3, 7, 20]))
        await move_to(app, clock, moment, *units)
        unit = chooser.choice(units)
        form = chooser.choice(forms)
        batch = []
        for rid in chooser.sample(["a", "b", "c", "d"], k=chooser.randint(1, 3)):
            key = (unit.code, form, rid)
            event = events.setdefault(key, moment - timedelta(hours=chooser.choice([1, 30])))
            stored = last_sent.get(key)
            if stored is None:
                action = chooser.choice([1, 1, 1, 2, 3])  # an amendment or revocation of nothing: refused
            elif chooser.random() < 0.25:
                batch.append(dict(stored))  # re-sent unchanged
                continue
            else:
                action = chooser.choice([1, 2, 2, 3])  # 1 again: refused; after a revocation all are refused
            record = make_record(form, unit.code, rid, event, seed=step, action=action)
            if chooser.random() < 0.15 and form == "outpatient_visit":
                record["patient_type_code"] = "7"  # rejected by the validator
            batch.append(record)
        response = await post_records(client, unit, form, batch)
        assert response.status_code == 200, response.text
        for record, answer in zip(batch, response.json()["records"], strict=True):
            seen.add(answer["status"])
            if answer["status"] in ("accepted", "amended", "revoked"):
                last_sent[(unit.code, form, record["record_id"])] = record
        await assert_counters_equal_a_recount(database)
    # The history went through every outcome, so the recount was checked against each.
    assert seen == {"accepted", "amended", "revoked", "duplicate", "rejected"}


# --- the bulletin's collection figures ----------------------------------------------------------------------
