"""A bulk job on SQLite leaves other writers their turn between its chunks: taken back to back, the chunks held the
file's lock so that a booking waited out the whole job and then failed on its busy timeout."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from cityhealth.clock import SimulatedClock
from cityhealth.collection import jobs
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, stored_count, wait_for_job
from tests.collection.test_jobs import ndjson, upload
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL's writers do not share one lock")

CHUNKS = 12
CHUNK = 25


async def test_a_writer_takes_the_lock_between_a_jobs_chunks(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    app.state.tasks.resources[jobs.CHUNK_ROWS_SETTING] = CHUNK
    response = await upload(client, hospital, ndjson(hospital, clock, CHUNKS * CHUNK))
    assert response.status_code in (200, 202), response.text
    waiting = asyncio.create_task(wait_for_job(app, response.json()["id"]))
    written = 0
    while not waiting.done():
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
        written += 1
        await asyncio.sleep(0.02)
    await waiting
    assert await stored_count(database) == CHUNKS * CHUNK
    # Back to back, a chunk whose successor was ready left the writer no turn (8 turns in 12 chunks here, all
    # where the next chunk was still being prepared); with a pause between chunks it writes at every one.
    assert written >= CHUNKS
