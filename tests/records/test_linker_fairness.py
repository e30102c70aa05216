"""The linker's pass on SQLite leaves other writers their turn: pages taken back to back held the file's lock so
that a booking waited out the whole pass (minutes on a month's records) and then failed on its busy timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, text

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import Record
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.records.tasks import run_linker
from cityhealth.security.crypto import field_cipher
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL's writers do not share one lock")

PAGES = 12
PAGE = 150


async def _visits(database: Database, clock: SimulatedClock, count: int) -> None:
    at = clock.now() - timedelta(hours=1)
    rows = [{"organization_id": 1, "form": "outpatient_visit", "record_id": f"V{n}", "version": 1, "action": 1,
             "payload_hash": uuid.uuid4().hex, "fields": {"visit_no": f"V{n}", "patient_id": f"P{n}"},
             "event_time": at, "event_month": 202206, "first_received_at": at + timedelta(microseconds=n),
             "received_at": at + timedelta(microseconds=n), "conformance": 0, "conformance_month": None,
             "job_id": None, "health_record_no": None} for n in range(count)]
    async with database.transaction() as session:
        await session.execute(insert(Record), rows)


async def test_a_writer_takes_the_lock_between_the_linkers_pages(database: Database, settings: Settings,
                                                                  clock: SimulatedClock) -> None:
    await _visits(database, clock, PAGES * PAGE)
    written: list[float] = []
    linking = asyncio.create_task(run_linker(database, clock, field_cipher(settings), page=PAGE))
    while not linking.done():
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
        written.append(time.monotonic())
        await asyncio.sleep(0.02)
    counts = await linking
    assert counts.indexed == PAGES * PAGE
    # Back to back, the pages left the writer no turn until the pass ended (one transaction, after it); with a
    # pause between pages it writes between them, several times in the pass.
    assert len(written) > PAGES // 3
