"""Bulk jobs prepared by the prepare processes: which jobs go there, and what comes back from them."""

from __future__ import annotations

import gzip
from datetime import timedelta

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection import jobs
from cityhealth.collection.models import Record
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
