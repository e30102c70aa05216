"""Bulk jobs prepared by the prepare processes: which jobs go there, and what comes back from them."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection import jobs
from cityhealth.collection.api import runtime
from cityhealth.collection.ingest import ingest
from cityhealth.collection.models import Conformance, DailyCount, MonthlyTotal, Record, RejectionCount
from cityhealth.collection.new_records import ColumnsPrepared, new_chunk_keys
from cityhealth.collection.prepare import InputRow, PreparedColumns, prepare_columns
from cityhealth.collection.repository import organizations
from cityhealth.collection.spool import FRAME_BYTES
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit
from tests.collection.test_jobs import finished, ndjson, upload
from tests.factories.collection import make_record


async def test_a_gzip_job_goes_to_the_prepare_processes_by_its_inflated_size(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    # The threshold is the text's size: a day's file sent gzip-compressed (10-20 times smaller) is as large a
    # job as the same file sent plain, and was prepared in the event loop's thread.
    app.state.tasks.resources |= {jobs.POOL_MIN_BYTES_SETTING: FRAME_BYTES}
    text = ndjson(hospital, clock, 9_000)
    body = gzip.compress(text)
    assert len(body) < FRAME_BYTES <= len(text) - FRAME_BYTES  # a full frame of text before the last one
    job = await finished(app, client, hospital, await upload(client, hospital, body, **{"content-encoding": "gzip"}))
    assert job["counts"] == {"received": 9_000, "accepted": 9_000}
    assert jobs.pool_of(app.state.tasks).started


async def test_a_small_gzip_job_is_still_prepared_in_process(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    app.state.tasks.resources |= {jobs.POOL_MIN_BYTES_SETTING: FRAME_BYTES}
    body = gzip.compress(ndjson(hospital, clock, 50))
    job = await finished(app, client, hospital, await upload(client, hospital, body, **{"content-encoding": "gzip"}))
    assert job["counts"] == {"received": 50, "accepted": 50}
    assert not jobs.pool_of(app.state.tasks).started


async def test_records_amended_and_resent_in_one_pooled_chunk_store_what_the_file_says_last(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    # A prepare process sends back no payload for a record of action 1 (its COPY row holds it): the
    # amendment's own payload must still arrive, and a re-sent original is a duplicate, whichever way.
    app.state.tasks.resources |= {jobs.POOL_MIN_BYTES_SETTING: 0}
    at = clock.now() - timedelta(hours=3)
    first = make_record("outpatient_visit", hospital.code, "v-1", at)
    amended = {**first, "action": 2, "dept_name": "神经内科"}
    other = make_record("outpatient_visit", hospital.code, "v-2", at)
    lines = [first, amended, other, other]
    body = b"".join(orjson.dumps({"form": "outpatient_visit", **line}) + b"\n" for line in lines)
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    assert job["counts"] == {"received": 4, "accepted": 2, "amended": 1, "duplicate": 1}
    assert jobs.pool_of(app.state.tasks).started
    async with database.transaction() as session:
        stored = {r.record_id: r for r in (await session.execute(select(Record))).scalars()}
    # Stored normalised (codes as text): compared field by field on what the file said.
    assert (stored["v-1"].version, stored["v-1"].fields["action"], stored["v-1"].fields["dept_name"]) == (
        2, "2", "神经内科")
    assert (stored["v-2"].version, stored["v-2"].fields["visit_no"]) == (1, other["visit_no"])


HOSPITAL_FORMS = ("outpatient_visit", "prescription", "lab_report", "patient_master_index", "inpatient_order")


def chunk_of(unit: Unit, received: datetime, count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """New records of the hospital forms, every third one late (outside the real-time window), every
    seventh invalid: a day's chunk."""
    forms, records = [], []
    for i in range(count):
        form = HOSPITAL_FORMS[i % len(HOSPITAL_FORMS)]
        at = received - (timedelta(days=40) if i % 3 == 0 else timedelta(hours=2))
        record = make_record(form, unit.code, f"r-{i}", at)
        if i % 7 == 0:
            record["action"] = 7  # a code outside CH.action
        forms.append(form)
        records.append(record)
    return forms, records


async def stored_state(database: Database, unit: Unit) -> dict[str, list[tuple[Any, ...]]]:
    """What a unit's batches left: its records and every counter, without the unit's id (and the payload, which
    holds the unit's code: the COPY rows' payloads are compared in test_copy_rows)."""
    tables = {
        "records": (Record, ("organization_id", "payload_hash", "fields")),
        "daily": (DailyCount, ("organization_id",)),
        "rejections": (RejectionCount, ("organization_id",)),
        "conformance": (Conformance, ("organization_id",)),
        "totals": (MonthlyTotal, ("organization_id",)),
    }
    state = {}
    async with database.transaction() as session:
        for name, (model, left_out) in tables.items():
            columns = [c for c in model.__table__.columns if c.name not in left_out]
            rows = (await session.execute(select(*columns).where(model.organization_id == unit.org.id))).all()
            state[name] = sorted(tuple(row) for row in rows)
    return state


async def test_a_chunk_of_new_records_decided_by_its_columns_stores_and_counts_as_record_by_record(
    app: FastAPI,
    hospital: Unit,
    other_hospital: Unit,
    clock: SimulatedClock,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = runtime(app)[0]
    async with database.transaction() as session:
        validators = await collector.validators(session)
    received = clock.now()
    results = []
    for unit, by_columns in ((hospital, True), (other_hospital, False)):
        forms, records = chunk_of(unit, received, 600)
        rows = [InputRow(n + 1, dict(record), form) for n, (form, record) in enumerate(zip(forms, records))]  # noqa: B905
        columns = prepare_columns(
            collector, validators, forms, records, {}, received,
            keep_records=False, copy_rows=not database.is_sqlite, payloads_of_new=False,
        )  # fmt: skip
        assert columns.rejected  # the invalid ones
        if by_columns and not database.is_sqlite:  # the column path runs: no candidates are made
            monkeypatch.setattr(ColumnsPrepared, "batch", lambda _: pytest.fail("decided record by record"))
        prepared = ColumnsPrepared(validators, received, columns) if by_columns else columns.batch(validators, received)
        async with database.transaction() as session:
            sender = await organizations.organization_by_id(session, unit.org.id)
            assert sender is not None
            result = await ingest(
                session, collector, sender, rows, received_at=received, sequential_repeats=True,
                forbid_foreign=False, prepared=prepared, detailed=False,
            )  # fmt: skip
        monkeypatch.undo()
        results.append((result.counts(), [(o.position, o.status, o.errors) for o in result.outcomes]))
    assert results[0] == results[1]
    assert results[0][0]["accepted"] == 600 - len(columns.rejected)
    by_columns, by_record = await stored_state(database, hospital), await stored_state(database, other_hospital)
    assert by_columns["conformance"]  # the late and the timely, in their months
    assert by_columns == by_record


def test_only_a_chunk_of_originals_of_the_sender_with_distinct_keys_and_plain_counters_goes_by_columns() -> None:
    def columns(**changes: Any) -> PreparedColumns:
        base: dict[str, Any] = {
            "indexes": [0, 1],
            "forms": ["outpatient_visit", "lab_report"],
            "record_ids": ["a", "b"],
            "org_codes": ["H0001", "H0001"],
            "actions": [1, 1],
            "copy_rows": [b"x", b"y"],
        }
        return PreparedColumns(**(base | changes))

    assert new_chunk_keys(columns(), "H0001") == [("outpatient_visit", "a"), ("lab_report", "b")]
    assert new_chunk_keys(columns(actions=[1, 2]), "H0001") is None  # an amendment: decided against its original
    assert new_chunk_keys(columns(org_codes=["H0001", "H0002"]), "H0001") is None  # another unit's code
    assert new_chunk_keys(columns(record_ids=["a", "a"], forms=["lab_report"] * 2), "H0001") is None  # repeated
    assert new_chunk_keys(columns(copy_rows=[]), "H0001") is None  # SQLite: no encoded rows
    assert new_chunk_keys(columns(forms=["outpatient_visit", "health_record"]), "H0001") is None  # managed numbers
    assert new_chunk_keys(columns(forms=["outpatient_visit", "workload_daily"]), "H0001") is None  # workload feed


def test_a_prepare_process_loads_no_database_layer() -> None:
    # A prepare process imports workers.py and what it needs: the database layer (SQLAlchemy, the models, the
    # repositories) would add ~0.4 s of CPU to every process's start and ~25 MB to its memory.
    code = (
        "import sys, cityhealth.collection.workers; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'cityhealth.collection.repository', "
        "'cityhealth.collection.metrics', 'cityhealth.db'))))"
    )
    environment = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    found = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    assert found.stdout.strip() == "[]"
