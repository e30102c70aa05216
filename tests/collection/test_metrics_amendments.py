"""The quality counters under amendments and revocations: after every step they equal a recount of the store.

A record is sent, re-sent unchanged, amended, revoked and sent again after its revocation, across days and
units; after each step the daily counters (per organization, form and Nanjing day), the monthly stored
totals and the conformance cells must be what a recount from the stored records and their versions gives,
and the bulletin's collection figures must follow the definitions of docs/domain.md.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import BUSINESS_TZ, SimulatedClock, business_date
from cityhealth.collection.models import (
    Conformance,
    DailyCount,
    FollowupFlag,
    ManagedCount,
    ManagedRecord,
    MonthlyTotal,
    Record,
    RecordVersion,
    RejectionCount,
    Workload,
)
from cityhealth.collection.public_health import PROGRAM_OF_FORM
from cityhealth.collection.standard import load_standard
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import make_record
from tests.factories.security import admin_headers, headers_for, machine

WINDOW = timedelta(hours=24)
FORMS = load_standard().forms
ACTION_STATUS = {1: "accepted", 2: "amended", 3: "revoked"}


def nanjing(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=BUSINESS_TZ)


async def move_to(app: FastAPI, clock: SimulatedClock, moment: datetime, *units: Unit) -> None:
    """Move the clock, with fresh tokens for the units (theirs expire five minutes after issue)."""
    clock.set(moment)
    for unit in units:
        unit.headers = await headers_for(
            app, machine(Scope.COLLECTION_UPLOAD, organization_id=unit.org.id, client_id=f"c-{unit.code}")
        )


async def send(client: httpx.AsyncClient, unit: Unit, form: str, *records: dict[str, Any]) -> list[str]:
    response = await post_records(client, unit, form, list(records))
    assert response.status_code == 200, response.text
    return [item["status"] for item in response.json()["records"]]


# --- the recount -------------------------------------------------------------------------------------------


async def _versions(database: Database) -> list[tuple[int, str, str, int, int, datetime, datetime]]:
    """Every stored version: (org, form, record id, version, action, event time, received at)."""
    async with database.transaction() as session:
        current = (await session.execute(select(Record))).scalars().all()
        older = (await session.execute(select(RecordVersion))).scalars().all()
    rows = [(r.organization_id, r.form, r.record_id, r.version, r.action, r.event_time, r.received_at)
            for r in current]
    rows += [(v.organization_id, v.form, v.record_id, v.version, v.action, v.event_time, v.received_at)
             for v in older]
    return rows


async def daily_counts(database: Database) -> dict[tuple[int, str, date], dict[str, int]]:
    async with database.transaction() as session:
        rows = (await session.execute(select(DailyCount))).scalars().all()
    return {
        (row.organization_id, row.form, row.day): {
            name: getattr(row, name)
            for name in ("received", "accepted", "amended", "revoked", "duplicate", "rejected", "flagged")
        }
        for row in rows
    }


async def assert_counters_equal_a_recount(database: Database) -> None:
    """Daily stored outcomes, monthly totals and conformance cells, recounted from the store."""
    versions = await _versions(database)
    stored: dict[tuple[int, str, date], Counter[str]] = defaultdict(Counter)
    monthly: Counter[tuple[int, int]] = Counter()
    for org, form, _, _, action, _, received in versions:
        day = business_date(received)
        stored[(org, form, day)][ACTION_STATUS[action]] += 1
        if FORMS[form].kind != "workload":
            monthly[(org, day.year * 100 + day.month)] += 1
    counted = await daily_counts(database)
    for key in set(stored) | set(counted):
        expected = stored.get(key, Counter())
        got = counted.get(key, {})
        assert {name: got.get(name, 0) for name in ACTION_STATUS.values()} == {
            name: expected[name] for name in ACTION_STATUS.values()
        }, key
        assert got.get("received", 0) == sum(
            got.get(name, 0) for name in ("accepted", "amended", "revoked", "duplicate", "rejected")
        ), key
    async with database.transaction() as session:
        rows = (await session.execute(select(MonthlyTotal))).scalars()
        totals = {(t.organization_id, t.month): t.stored for t in rows}
        cells = {
            (c.organization_id, c.month, c.group): (c.basis, c.conforming)
            for c in (await session.execute(select(Conformance))).scalars()
        }
    assert {key: n for key, n in totals.items() if n} == dict(monthly)
    # Conformance as domain.md defines it: an accepted (not revoked) record of the group, in the month of its
    # first version's event, conforming when that first version came within the window and is still the only one.
    first: dict[tuple[int, str, str], tuple[datetime, datetime]] = {}
    latest: dict[tuple[int, str, str], tuple[int, int]] = {}
    for org, form, rid, version, action, event, received in versions:
        if version == 1:
            first[(org, form, rid)] = (event, received)
        if version >= latest.get((org, form, rid), (0, 0))[0]:
            latest[(org, form, rid)] = (version, action)
    expected_cells: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for (org, form, rid), (version, action) in latest.items():
        group = FORMS[form].group
        if group is None or action == 3:
            continue
        event, received = first[(org, form, rid)]
        local = event.astimezone(BUSINESS_TZ)
        cell = expected_cells[(org, local.year * 100 + local.month, group)]
        cell[0] += 1
        cell[1] += int(version == 1 and received - event <= WINDOW)
    assert {key: value for key, value in cells.items() if value != (0, 0)} == {
        key: tuple(value) for key, value in expected_cells.items()
    }


def visit(unit: Unit, rid: str, event: datetime, **overrides: Any) -> dict[str, Any]:
    return make_record("outpatient_visit", unit.code, rid, event, **overrides)


# --- one record's life ---------------------------------------------------------------------------------------


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
    assert await _versions(database) == []
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


async def conformance(database: Database, unit: Unit, month: int = 202206) -> tuple[int, int]:
    async with database.transaction() as session:
        cells = (await session.execute(
            select(Conformance).where(Conformance.organization_id == unit.org.id, Conformance.month == month)
        )).scalars().all()
    found = {cell.group: (cell.basis, cell.conforming) for cell in cells}
    return found.get("outpatient", (0, 0))


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
    assert await _versions(database) == []
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
    assert len(await _versions(database)) == 2
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


async def quality(app: FastAPI, client: httpx.AsyncClient, month: str = "2022-06") -> dict[str, Any]:
    response = await client.get("/api/collection/quality", params={"month": month}, headers=await admin_headers(app))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def enrol(app: FastAPI, client: httpx.AsyncClient, unit: Unit, group: str) -> None:
    response = await client.post("/api/collection/enrolments", headers=await admin_headers(app),
                                 json={"organization_code": unit.code, "group": group, "start_date": "2022-06-01"})
    assert response.status_code == 201, response.text


async def test_uploaded_records_count_every_received_record_valid_or_not(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    record = visit(hospital, "v-1", at)
    await send(client, hospital, "outpatient_visit", record)
    await send(client, hospital, "outpatient_visit", record)  # duplicate
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-2", at, visit_no=None))  # rejected
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["upload_days"], row["realtime_forms"]) == (4, 1, 1)


async def test_upload_days_are_distinct_nanjing_days_and_exclude_workload_reports(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await move_to(app, clock, nanjing(15, 23, 50), hospital)
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", clock.now() - timedelta(hours=1)))
    await move_to(app, clock, nanjing(16, 0, 10), hospital)  # 16:10 UTC on the 15th: a new day in Nanjing
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-2", clock.now() - timedelta(hours=1)))
    await move_to(app, clock, nanjing(18, 9), hospital)
    await send(client, hospital, "workload_daily",
               make_record("workload_daily", hospital.code, "w-17", nanjing(17, 12)))
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["upload_days"]) == (2, 2)
    assert row["outpatient_visits"] > 0


async def test_a_form_with_only_rejected_records_is_not_a_form_with_data(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(hours=1)
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", at))
    await send(client, hospital, "admission", make_record("admission", hospital.code, "a-1", at, dept_code=None))
    await send(client, hospital, "settlement", make_record("settlement", hospital.code, "s-1", at))
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["realtime_forms"]) == (3, 2)


async def test_workload_visits_are_the_latest_report_of_each_day_and_a_revoked_report_counts_nothing(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    day13 = make_record("workload_daily", hospital.code, "w-13", nanjing(13, 12),
                        outpatient_emergency_visits=100, discharges=10)
    day14 = make_record("workload_daily", hospital.code, "w-14", nanjing(14, 12),
                        outpatient_emergency_visits=200, discharges=20)
    await send(client, hospital, "workload_daily", day13, day14)
    await send(client, hospital, "workload_daily", {**day14, "action": 2, "outpatient_emergency_visits": 250})
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"], row["uploaded_records"]) == (350, 30, 0)
    await send(client, hospital, "workload_daily", {**day13, "action": 3})
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (250, 20)
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 250, "w-14")]
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 0


async def test_conformance_in_the_report_follows_amendments_and_revocations(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await enrol(app, client, hospital, "inpatient")
    at = clock.now() - timedelta(hours=2)
    records = [make_record("discharge", hospital.code, f"d-{i}", at) for i in range(8)]
    await send(client, hospital, "discharge", *records)
    await send(client, hospital, "discharge", {**records[0], "action": 2, "dept_name": "心内科"})
    await send(client, hospital, "discharge", {**records[1], "action": 3})
    row = (await quality(app, client))["hospitals"][0]
    # 7 records in the basis (one revoked), 6 still conforming (one amended): 85.71 %
    assert (row["discharge_conformance_pct"], row["discharge_conformance_basis"]) == ("85.71", 7)
    assert row["outpatient_conformance_pct"] is None


async def test_cumulative_accepted_counts_every_stored_version_and_the_opening_balance(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await client.put("/api/collection/opening-balances", headers=await admin_headers(app),
                                json={"kind": "accepted_total", "count": 500, "as_of": "2022-05-31"})
    assert response.status_code == 200, response.text
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    await send(client, hospital, "outpatient_visit", record)  # duplicate: not stored
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})
    assert len(await _versions(database)) == 3
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 503
    assert (await quality(app, client, "2022-05"))["cumulative_accepted_at_month_end"] == 500


async def test_health_records_are_counted_distinct_and_leave_when_revoked(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    two = make_record("health_record", district.code, "hr-3", at)
    assert one["record_no"] != two["record_no"]
    await send(client, district, "health_record", one, same_number, two)
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 2, "hypertension": 0, "diabetes": 0}
    await send(client, district, "health_record", {**two, "action": 3})
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}


async def test_follow_ups_count_distinct_managed_residents_per_program(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    number = "32011500100100042"
    first = make_record("hypertension_followup", district.code, "f-1", at - timedelta(days=30),
                        health_record_no=number)
    second = make_record("hypertension_followup", district.code, "f-2", at, health_record_no=number)
    diabetic = make_record("diabetes_followup", district.code, "g-1", at, health_record_no=number)
    await send(client, district, "hypertension_followup", first, second)
    await send(client, district, "diabetes_followup", diabetic)
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 1, "diabetes": 1}


async def test_a_disagreeing_classification_is_flagged_and_the_flag_cleared_by_a_corrected_amendment(
    client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("hypertension_followup", district.code, "f-1", clock.now() - timedelta(days=1),
                         sbp=150, dbp=95)  # uncontrolled, sent as 1 控制满意
    await send(client, district, "hypertension_followup", record)
    async with database.transaction() as session:
        flag = (await session.execute(select(FollowupFlag))).scalar_one()
    assert (flag.submitted, flag.computed, flag.event_month) == ("1", "2", 202206)
    counts = await daily_counts(database)
    assert counts[(district.org.id, "hypertension_followup", date(2022, 6, 15))]["flagged"] == 1
    fixed = {**record, "action": 2, "classification_code": "2", "classification_name": "控制不满意"}
    assert await send(client, district, "hypertension_followup", fixed) == ["amended"]
    async with database.transaction() as session:
        assert (await session.execute(select(FollowupFlag))).scalars().all() == []
    await assert_counters_equal_a_recount(database)


async def test_revoking_a_replaced_workload_report_leaves_its_replacement(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    first = make_record("workload_daily", hospital.code, "w-a", nanjing(14, 12),
                        outpatient_emergency_visits=100, discharges=10)
    replacement = make_record("workload_daily", hospital.code, "w-b", nanjing(14, 12),
                              outpatient_emergency_visits=200, discharges=20)
    await send(client, hospital, "workload_daily", first)
    await send(client, hospital, "workload_daily", replacement)
    assert await send(client, hospital, "workload_daily", {**first, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (200, 20)
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 200, "w-b")]


async def test_an_amended_workload_report_moves_to_its_new_day(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    report = make_record("workload_daily", hospital.code, "w-c", nanjing(13, 12),
                         outpatient_emergency_visits=50, discharges=5)
    await send(client, hospital, "workload_daily", report)
    assert await send(client, hospital, "workload_daily", {**report, "action": 2, "report_date": "20220612"}) == [
        "amended"]
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 12), 50, "w-c")]
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (50, 5)


async def test_a_bulk_file_of_reports_keeps_the_latest_of_each_day(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    a = make_record("workload_daily", hospital.code, "w-a", nanjing(14, 12), outpatient_emergency_visits=1,
                    discharges=1)
    b = make_record("workload_daily", hospital.code, "w-b", nanjing(14, 12), outpatient_emergency_visits=2,
                    discharges=2)
    rows = [a, b, {**a, "action": 2, "outpatient_emergency_visits": 3}, {**b, "action": 3}]
    body = b"".join(orjson.dumps({"form": "workload_daily", **row}) + b"\n" for row in rows)
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    await wait_for_job(app, response.json()["id"])
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 3, "w-a")]


async def test_revoking_one_of_two_records_of_a_health_record_number_keeps_it_counted(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    await send(client, district, "health_record", one, same_number)
    assert await send(client, district, "health_record", {**same_number, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}


async def test_a_health_record_whose_number_was_amended_leaves_when_revoked(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    record = make_record("health_record", district.code, "hr-1", clock.now() - timedelta(days=1))
    await send(client, district, "health_record", record)
    amended = {**record, "action": 2, "record_no": "32011500100199999"}
    assert await send(client, district, "health_record", amended) == ["amended"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}
    assert await send(client, district, "health_record", {**amended, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 0, "diabetes": 0}


async def assert_managed_equal_the_live_holders(database: Database) -> None:
    """The managed numbers are those a live record holds (read from its fields), and the counts sum to them."""
    async with database.transaction() as session:
        records = (await session.execute(select(Record).where(Record.form.in_(PROGRAM_OF_FORM)))).scalars().all()
        managed = (await session.execute(select(ManagedRecord))).scalars().all()
        counts = (await session.execute(select(ManagedCount))).scalars().all()
    held = {
        (r.organization_id, PROGRAM_OF_FORM[r.form][0], r.fields[PROGRAM_OF_FORM[r.form][1]])
        for r in records
        if r.action != 3
    }
    assert {(m.organization_id, m.program, m.health_record_no) for m in managed} == held
    per_area: Counter[tuple[int, str, str]] = Counter()
    for count in counts:
        per_area[(count.organization_id, count.area_code, count.program)] += count.added
    assert +per_area == Counter((m.organization_id, m.area_code, m.program) for m in managed)


async def test_an_amendment_away_from_a_number_another_record_holds_keeps_that_number(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    await send(client, district, "health_record", one, same_number)
    assert await send(client, district, "health_record", {**same_number, "action": 2,
                                                          "record_no": "32011500100199999"}) == ["amended"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 2, "hypertension": 0, "diabetes": 0}
    assert await send(client, district, "health_record", {**one, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}
    await assert_managed_equal_the_live_holders(database)


async def test_a_management_record_stays_while_a_live_follow_up_holds_its_number(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(days=1)
    number, other = "32011500100100042", "32011500100100043"
    first = make_record("hypertension_followup", district.code, "f-1", at - timedelta(days=30),
                        health_record_no=number)
    second = make_record("hypertension_followup", district.code, "f-2", at, health_record_no=number)
    await send(client, district, "hypertension_followup", first, second)
    assert await send(client, district, "hypertension_followup", {**first, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 1, "diabetes": 0}
    moved = {**second, "action": 2, "health_record_no": other}
    assert await send(client, district, "hypertension_followup", moved) == ["amended"]
    await assert_managed_equal_the_live_holders(database)
    assert await send(client, district, "hypertension_followup", {**moved, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 0, "diabetes": 0}
    await assert_managed_equal_the_live_holders(database)


async def test_a_bulk_file_moving_and_revoking_health_records_counts_only_the_numbers_left_held(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    at = clock.now() - timedelta(days=1)
    moved = make_record("health_record", district.code, "hr-1", at)
    gone = make_record("health_record", district.code, "hr-2", at)
    kept = make_record("health_record", district.code, "hr-3", at, record_no=gone["record_no"])
    rows = [moved, gone, kept, {**moved, "action": 2, "record_no": "32011500100199999"},
            {**gone, "action": 3}, {**moved, "action": 2, "record_no": "32011500100199998"}]
    body = b"".join(orjson.dumps({"form": "health_record", **row}) + b"\n" for row in rows)
    for _ in range(2):  # the same file again is the same job: nothing moves twice
        response = await client.post("/api/collection/jobs", content=body,
                                     headers={**district.headers, "content-type": "application/x-ndjson"})
        assert response.status_code in (200, 202), response.text  # 200: the job the first post made
        await wait_for_job(app, response.json()["id"])
    async with database.transaction() as session:
        numbers = sorted((await session.execute(select(ManagedRecord.health_record_no))).scalars())
    assert numbers == sorted([gone["record_no"], "32011500100199998"])
    await assert_managed_equal_the_live_holders(database)


async def test_a_bulk_file_carrying_a_record_its_amendments_and_revocation_counts_each_version_once(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    at = clock.now() - timedelta(hours=2)
    first = visit(hospital, "v-1", at)
    amended = {**first, "action": 2, "doctor_name": "周医生"}
    other = visit(hospital, "v-2", at)
    rows = [first, other, amended, amended, {**other, "action": 3}, {**other, "action": 2, "doctor_name": "晚"},
            visit(hospital, "v-3", at, visit_no=None)]
    body = b"".join(orjson.dumps({"form": "outpatient_visit", **row}) + b"\n" for row in rows)
    for _ in range(2):  # the same file again is the same job: nothing is counted twice
        response = await client.post("/api/collection/jobs", content=body,
                                     headers={**hospital.headers, "content-type": "application/x-ndjson"})
        await wait_for_job(app, response.json()["id"])
    job = (await client.get(f"/api/collection/jobs/{response.json()['id']}", headers=hospital.headers)).json()
    assert job["counts"] == {"received": 7, "accepted": 2, "amended": 1, "revoked": 1, "duplicate": 1,
                             "rejected": 2}
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert {k: row[k] for k in ("received", "accepted", "amended", "revoked", "duplicate", "rejected")} == \
        job["counts"]
    assert await conformance(database, hospital) == (1, 0)
    await assert_counters_equal_a_recount(database)
