"""Bulk upload limits: bombs, oversized bodies and lines are refused while streaming, leaving nothing behind,
and a job never stalls the event loop that answers requests."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import Job
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, stored_count, wait_for_job
from tests.factories.collection import make_record

KIB, MIB = 1 << 10, 1 << 20
# Small enough to keep the tests quick; each test may replace some (indirect parametrisation of `settings`).
TEST_LIMITS: dict[str, int] = {
    "upload_max_compressed_bytes": 4 * MIB,
    "upload_max_decompressed_bytes": 16 * MIB,
    "upload_max_line_bytes": 64 * KIB,
    "upload_max_expansion_ratio": 50,
    "upload_expansion_check_from_bytes": 2 * MIB,
}
DEFAULTS: dict[str, int] = {}  # the platform's own limits


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    limits: dict[str, int] = getattr(request, "param", TEST_LIMITS)
    return Settings(
        env=Environment.TEST,
        database_url=database_url,
        var_dir=tmp_path / "var",
        simulated_clock=True,
        **limits,  # type: ignore[arg-type]
    )


def with_limits(**changes: int) -> Any:
    return pytest.mark.parametrize("settings", [{**TEST_LIMITS, **changes}], indirect=True)


def record_line(unit: Unit, clock: SimulatedClock, record_id: str) -> bytes:
    at = clock.now() - timedelta(hours=3)
    return orjson.dumps({"form": "outpatient_visit", **make_record("outpatient_visit", unit.code, record_id, at)})


def gzip_member(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


class Body:
    """A streamed request body (sent chunked, with no declared length) that counts what the server read."""

    def __init__(self, chunks: AsyncIterator[bytes] | list[bytes]) -> None:
        self._chunks = chunks
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if isinstance(self._chunks, list):
            for chunk in self._chunks:
                self.sent += len(chunk)
                yield chunk
            return
        async for chunk in self._chunks:
            self.sent += len(chunk)
            yield chunk


async def bomb(member: bytes, times: int) -> AsyncIterator[bytes]:
    """A multi-member gzip file, made as it is sent: `times` copies of one small member."""
    for _ in range(times):
        yield member


async def post(client: httpx.AsyncClient, unit: Unit, content: Any, **headers: str) -> httpx.Response:
    return await client.post(
        "/api/collection/jobs",
        content=content,
        headers={**unit.headers, "content-type": "application/x-ndjson", **headers},
    )


async def assert_nothing_written(settings: Settings, database: Database) -> None:
    spool = settings.var_dir / "collection" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []
    async with database.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 0
    assert await stored_count(database) == 0


def assert_refused(response: httpx.Response, rule: str, limit: int, setting: str) -> None:
    assert response.status_code == 413, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert (problem["code"], problem["rule"], problem["field"], problem["value"]) == (
        "payload_too_large",
        rule,
        "body",
        limit,
    )
    assert problem["errors"][0]["setting"] == setting
    assert setting in problem["detail"]


def ndjson_lines(unit: Unit, clock: SimulatedClock, max_bytes: int) -> bytes:
    """Distinct records, as many as fit in `max_bytes`."""
    lines: list[bytes] = []
    size = 0
    while size + len(line := record_line(unit, clock, f"r-{len(lines)}") + b"\n") <= max_bytes:
        lines.append(line)
        size += len(line)
    return b"".join(lines)


@with_limits(upload_max_expansion_ratio=5000)  # so that only the decompressed size can refuse it
async def test_gzip_bomb_is_refused_at_the_decompressed_limit(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    # The bomb: ~255 KB of gzip inflating to 256 MiB of NDJSON (32 members of 8 MiB each).
    member = gzip_member((record_line(hospital, clock, "r-1") + b"\n") * (8 * MIB // 300))
    body = Body(bomb(member, 32))
    response = await post(client, hospital, body, **{"content-encoding": "gzip"})
    assert_refused(response, "upload.max_decompressed_bytes", 16 * MIB, "CITYHEALTH_UPLOAD_MAX_DECOMPRESSED_BYTES")
    assert body.sent <= 3 * len(member)  # stopped at 16 MiB inflated, two or three members in
    await assert_nothing_written(settings, database)


async def test_ratio_bomb_under_the_size_limit_is_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    # 8 MiB from ~8 KB: well under the 16 MiB size limit, but a thousandfold expansion.
    member = gzip_member((record_line(hospital, clock, "r-1") + b"\n") * (8 * MIB // 300))
    response = await post(client, hospital, member, **{"content-encoding": "gzip"})
    assert_refused(response, "upload.max_expansion_ratio", 50, "CITYHEALTH_UPLOAD_MAX_EXPANSION_RATIO")
    await assert_nothing_written(settings, database)


@pytest.mark.parametrize("settings", [DEFAULTS], indirect=True)
async def test_default_limits_refuse_the_1_gib_bomb_without_inflating_it(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    # ~1 MiB of gzip inflating to 1 GiB (128 members of 8 MiB), made as it is sent, never held whole.
    member = gzip_member((record_line(hospital, clock, "r-1") + b"\n") * (8 * MIB // 300))
    body = Body(bomb(member, 128))
    started = time.perf_counter()
    response = await post(client, hospital, body, **{"content-encoding": "gzip"})
    assert_refused(response, "upload.max_expansion_ratio", 100, "CITYHEALTH_UPLOAD_MAX_EXPANSION_RATIO")
    assert body.sent <= 4 * len(member)  # refused once 16 MiB had inflated, not 1 GiB
    assert time.perf_counter() - started < 10
    await assert_nothing_written(settings, database)


async def test_plain_body_over_the_compressed_limit_is_refused_while_streaming(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    piece = ndjson_lines(hospital, clock, 256 * KIB)
    body = Body([piece] * 64)  # 16 MiB, four times the limit, with no declared length
    response = await post(client, hospital, body)
    assert_refused(response, "upload.max_compressed_bytes", 4 * MIB, "CITYHEALTH_UPLOAD_MAX_COMPRESSED_BYTES")
    assert body.sent <= 4 * MIB + len(piece)  # stopped at the chunk that passed the limit
    await assert_nothing_written(settings, database)


async def test_declared_length_over_the_compressed_limit_is_refused_before_reading(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    piece = ndjson_lines(hospital, clock, 256 * KIB)
    body = Body([piece] * 20)
    response = await post(client, hospital, body, **{"content-length": str(20 * len(piece))})
    assert_refused(response, "upload.max_compressed_bytes", 4 * MIB, "CITYHEALTH_UPLOAD_MAX_COMPRESSED_BYTES")
    assert body.sent == 0
    await assert_nothing_written(settings, database)


@pytest.mark.parametrize("settings", [DEFAULTS], indirect=True)
async def test_over_long_line_is_refused_at_upload_naming_its_line(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, settings: Settings, database: Database
) -> None:
    long_line = b'{"form": "outpatient_visit", "note": "' + b"x" * (6 * MIB)
    chunks = [record_line(hospital, clock, "r-1") + b"\n"]
    chunks += [long_line[i : i + 4 * KIB] for i in range(0, len(long_line), 4 * KIB)]
    body = Body([*chunks, b'"}\n'])
    started = time.perf_counter()
    response = await post(client, hospital, body)
    assert time.perf_counter() - started < 5
    assert_refused(response, "upload.max_line_bytes", MIB, "CITYHEALTH_UPLOAD_MAX_LINE_BYTES")
    assert response.json()["errors"][0]["line"] == 2
    assert "line 2" in response.json()["detail"]
    assert body.sent <= MIB + 8 * KIB  # refused once the line passed the limit, not at its end
    await assert_nothing_written(settings, database)


async def test_upload_within_every_limit_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    # Very repetitive (so far better than 50-fold) but small: below the size from which the ratio counts.
    body = gzip_member((record_line(hospital, clock, "r-1") + b"\n") * 5000)
    response = await post(client, hospital, body, **{"content-encoding": "gzip"})
    assert response.status_code == 202, response.text
    await wait_for_job(app, response.json()["id"])
    job = (await client.get(f"/api/collection/jobs/{response.json()['id']}", headers=hospital.headers)).json()
    assert job["counts"] == {"received": 5000, "accepted": 1, "duplicate": 4999}


def maximal_file(unit: Unit, clock: SimulatedClock) -> bytes:
    """The largest NDJSON file the test limits let through: distinct records, with every 500th line as long
    as a line may be (a record carrying a long note, rejected as a row, but a legitimate line of the file)."""
    note = "x" * (TEST_LIMITS["upload_max_line_bytes"] - 1024)
    at = clock.now() - timedelta(hours=3)
    lines: list[bytes] = []
    size = 0
    while True:
        record = make_record("outpatient_visit", unit.code, f"r-{len(lines)}", at)
        if len(lines) % 500 == 499:
            record["note"] = note
        line = orjson.dumps({"form": "outpatient_visit", **record}) + b"\n"
        if size + len(line) > TEST_LIMITS["upload_max_decompressed_bytes"]:
            return b"".join(lines)
        lines.append(line)
        size += len(line)


async def test_healthz_waits_under_100_ms_of_event_loop_work_while_a_maximal_job_runs(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    plain = maximal_file(hospital, clock)
    body = gzip_member(plain)
    assert len(plain) > 15 * MIB
    assert len(plain) < TEST_LIMITS["upload_max_expansion_ratio"] * len(body)
    # Each /healthz is timed, from when it falls due to its answer, in the CPU time of the event loop's thread:
    # whatever the loop runs meanwhile (the job's steps included) counts, while the time the OS gives other
    # processes on a loaded machine does not - so the bound checks that no step blocks the loop, not the machine.
    loop_waits: list[float] = []
    latencies: list[float] = []
    stop = asyncio.Event()

    async def poll_healthz() -> None:
        due, due_cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            response = await client.get("/healthz")
            loop_waits.append(time.thread_time() - due_cpu)
            latencies.append(time.perf_counter() - due)
            assert response.status_code == 200
            await asyncio.sleep(0.02)
            due, due_cpu = time.perf_counter(), time.thread_time()

    polling = asyncio.create_task(poll_healthz())
    try:
        # In pieces as large as a server reads from its socket at once (256 KiB).
        pieces = [body[i : i + 256 * KIB] for i in range(0, len(body), 256 * KIB)]
        response = await post(client, hospital, Body(pieces), **{"content-encoding": "gzip"})
        assert response.status_code == 202, response.text
        await wait_for_job(app, response.json()["id"])
    finally:
        stop.set()
        await polling
    job = (await client.get(f"/api/collection/jobs/{response.json()['id']}", headers=hospital.headers)).json()
    records = plain.count(b"\n")
    assert job["counts"] == {"received": records, "accepted": records - records // 500, "rejected": records // 500}
    assert len(loop_waits) >= 10
    assert max(loop_waits) < 0.1, (f"a /healthz waited {max(loop_waits) * 1000:.0f} ms of loop CPU "
                                   f"(slowest by the wall clock: {max(latencies) * 1000:.0f} ms)")
    # A wait that takes no CPU (a blocking sleep or synchronous I/O in the loop) shows only on the wall clock:
    # bounded loosely, so that a loaded machine does not fail it but a loop stalled on I/O does.
    assert max(latencies) < 2.0, f"a /healthz took {max(latencies) * 1000:.0f} ms by the wall clock"
