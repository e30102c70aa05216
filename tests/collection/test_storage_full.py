"""A bulk upload the database has no room for, or that would eat into the disk kept free for everything else:
refused 507 naming the rule, no job and no spool frame left, and the platform goes on taking real-time uploads
and answering readiness."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, func, select, text

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import Job, SpoolFrame
from cityhealth.collection.repository import spool_frames
from cityhealth.config import Settings
from cityhealth.db import failures
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, post_records, stored_count
from tests.conftest import BACKEND
from tests.factories.collection import make_record

ROOM_PAGES = 256  # 1 MiB of 4 KiB pages beyond what the database holds at the start


def _incompressible_body(unit: Unit, clock: SimulatedClock, megabytes: int) -> bytes:
    """Records with a random note each: the spool's zstd cannot shrink them below their size."""
    at = clock.now() - timedelta(hours=1)
    lines = []
    for n in range(megabytes * 512):
        record = {"form": "outpatient_visit", **make_record("outpatient_visit", unit.code, f"full-{n}", at),
                  "chief_complaint": os.urandom(1024).hex()}
        lines.append(orjson.dumps(record))
    return b"\n".join(lines) + b"\n"


async def _cap_the_database(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: no more pages than it has plus ROOM_PAGES (SQLITE_FULL past them, as a full disk gives).
    PostgreSQL: the spool's second frame fails as a full disk fails a write (SQLSTATE 53100)."""
    if database.is_sqlite:
        async with database.engine.connect() as connection:
            pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
        await database.engine.dispose()  # every connection from now on opens capped

        def cap(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {int(pages) + ROOM_PAGES}")
            cursor.close()

        event.listen(database.engine.sync_engine, "connect", cap)
        return
    from asyncpg.exceptions import DiskFullError  # type: ignore[import-untyped]

    real = spool_frames.add_frame

    async def add_frame(session: Any, spool_id: str, index: int, sealed: bytes, written_at: Any) -> None:
        if index >= 1:
            raise DiskFullError("could not extend file: No space left on device")
        await real(session, spool_id, index, sealed, written_at)

    monkeypatch.setattr(spool_frames, "add_frame", add_frame)


async def _rows(database: Database, model: type[Any]) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_an_upload_the_database_has_no_room_for_is_refused_whole_and_the_rest_goes_on(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = _incompressible_body(hospital, clock, megabytes=4)
    await _cap_the_database(database, monkeypatch)
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["rule"], problem["field"]) == ("storage_full", "storage.full", "body")
    assert await _rows(database, Job) == 0
    assert await _rows(database, SpoolFrame) == 0
    at = clock.now() - timedelta(hours=1)
    batch = [make_record("outpatient_visit", hospital.code, f"after-{n}", at) for n in range(5)]
    assert (await post_records(client, hospital, "outpatient_visit", batch)).status_code == 200
    assert await stored_count(database) == 5
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.skipif(BACKEND != "sqlite", reason="the cap is SQLite's max_page_count")
async def test_a_real_time_batch_the_database_has_no_room_for_is_refused_507_and_stores_nothing(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _cap_the_database(database, monkeypatch)
    at = clock.now() - timedelta(hours=1)
    batch = [{**make_record("outpatient_visit", hospital.code, f"big-{n}", at),
              "chief_complaint": os.urandom(1500).hex()} for n in range(1000)]
    response = await post_records(client, hospital, "outpatient_visit", batch)
    assert response.status_code == 507, response.text
    assert response.json()["code"] == "storage_full"
    assert await stored_count(database) == 0


@pytest.mark.skipif(BACKEND != "sqlite", reason="the reserve is checked on a SQLite database's own filesystem")
async def test_an_upload_that_would_eat_into_the_disk_reserve_is_refused_before_writing_it(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100 KiB above the reserve: the first sealed frame (about half a MiB of these records) does not fit.
    monkeypatch.setattr(failures.shutil, "disk_usage",
                        lambda _path: shutil._ntuple_diskusage(1 << 40, 0, settings.storage_reserve_bytes + 102_400))  # type: ignore[attr-defined]
    body = _incompressible_body(hospital, clock, megabytes=2)
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 507, response.text
    problem = response.json()
    assert (problem["code"], problem["rule"], problem["field"]) == ("storage_full", "storage.reserve", "body")
    assert "CITYHEALTH_STORAGE_RESERVE_BYTES" in problem["detail"]
    assert await _rows(database, Job) == 0
    assert await _rows(database, SpoolFrame) == 0
