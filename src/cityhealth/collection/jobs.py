"""Bulk jobs: processed in chunks, each chunk one transaction that also advances the job's committed position.

A job interrupted anywhere (crash, restart, a failing chunk) resumes after its last committed chunk: the
chunk that was in flight rolled back whole, so nothing is counted twice. Two workers resuming the same job
serialise on the job row and the second skips chunks the first committed.

The loop is a two-stage pipeline: while chunk N is written (the database works on another core), chunk N+1
is prepared (parse, validate, hash, serialise) — by a worker process for large NDJSON jobs (workers.py),
else in a thread of this process, so that the event loop stays free for requests and for the write's round
trips. Chunk N+1 is only written after chunk N committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import Counter, deque
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection.ingest import BatchResult, RowOutcome, ingest
from cityhealth.collection.metrics import field_key
from cityhealth.collection.models import Job, JobRejection
from cityhealth.collection.prepare import (
    REJECTED,
    Collector,
    InputRow,
    PreparedBatch,
    gc_paused,
    prepare,
)
from cityhealth.collection.repository import bulk_jobs, organizations, table_writes
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.rules import RecordError
from cityhealth.collection.spool import csv_rows, ndjson_blocks, ndjson_rows, read_spool
from cityhealth.collection.workers import ChunkRows, ChunkTask, PreparedColumns, PreparePool, as_prepared
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, NotFound
from cityhealth.security.audit import Action, Outcome, record

logger = logging.getLogger("cityhealth.collection.jobs")
# Rows per transaction. Each of a chunk's write steps (deciding, building the rows, counting) runs in the
# server's event loop in one go, so the chunk bounds how long a request can wait behind it: 10,000 rows held
# the loop for 30-110 ms per step, 2,500 rows for at most ~30 ms, at the same CPU per record (100k records,
# PostgreSQL: 41.3 against 42.1 µs). The chunks in flight keep the server near 155 MB, each worker near 82 MB.
CHUNK_ROWS = 2500
_PREFETCH_CHUNKS = 2  # chunks handed to the workers ahead of the one being written (one per worker here)
_COLLECT_EVERY_ROWS = 100_000
# Jobs smaller than this are prepared in-process: starting a worker process costs about a second.
POOL_MIN_BYTES = 8 << 20


def _spool_path(job: Job) -> Path:
    if job.spool_path is None or not Path(job.spool_path).exists():
        raise Conflict(
            f"the raw upload of job {job.id} has been purged; it cannot be processed again",
            code="raw_payload_purged",
            field="job",
            value=job.id,
        )
    return Path(job.spool_path)


def job_rows(job: Job, collector: Collector, after: int = 0) -> Iterator[InputRow]:
    chunks = read_spool(_spool_path(job), collector.spool_key)
    # The line cap again on the way back: a spool written before the cap (or under a larger one) stays bounded.
    cap = collector.settings.upload_max_line_bytes
    if job.format == "csv":
        return csv_rows(chunks, job.form, after, max_line_bytes=cap)
    return ndjson_rows(chunks, job.form, after, max_line_bytes=cap)


def _summarise(job: Job, result: BatchResult, sign: int = 1) -> None:
    counts = Counter(job.counts)
    rules = Counter(job.rejections_by_rule)
    fields = Counter(job.rejections_by_field)
    for status, n in result.tally.items():
        if n:
            counts[status] += sign * n
            counts["received"] += sign * n
    for outcome in result.outcomes:
        for error in outcome.errors:
            rules[error.rule] += sign
            fields[field_key(error.field)] += sign
    job.counts = dict(counts)
    job.rejections_by_rule = {k: v for k, v in rules.items() if v}
    job.rejections_by_field = {k: v for k, v in fields.items() if v}


def _rejection_rows(job: Job, result: BatchResult) -> list[dict[str, Any]]:
    return [
        {
            "organization_id": job.organization_id,
            "job_id": job.id,
            "position": outcome.position,
            "form": outcome.form,
            "record_id": outcome.record_id,
            "errors": [error.as_dict() for error in outcome.errors],
            "row": outcome.row,
        }
        for outcome in result.rejected
    ]


def _audit_foreign(session: AsyncSession, clock: Clock, job: Job, result: BatchResult) -> None:
    foreign = sum(1 for o in result.rejected for e in o.errors if e.rule == "org_code.not_sender")
    if foreign:
        record(
            session,
            clock,
            None,
            Action.DENIED,
            "collection_job",
            resource_id=job.id,
            outcome=Outcome.DENIED,
            actor=job.client,
            detail=f"{foreign} row(s) named another organization's code",
        )


async def process_job(
    database: Database,
    collector: Collector,
    clock: Clock,
    job_id: int,
    chunk_rows: int = CHUNK_ROWS,
    pool: PreparePool | None = None,
) -> None:
    """Process a queued, running or failed job from its last committed position to the end.

    With a pool, an NDJSON job's chunks are prepared in its worker processes; otherwise in this event loop.
    """
    async with database.transaction() as session:
        job = await bulk_jobs.job_for_update(session, job_id)
        if job is None or job.status == "completed":
            return
        job.status, job.error = "running", None
        job.started_at = job.started_at or clock.now()
        sender = await organizations.organization_by_id(session, job.organization_id)
        start, snapshot, received_at = job.next_position, _snapshot(job), job.received_at
        await collector.validators(session)
    if sender is None:  # pragma: no cover - organizations are never deleted
        raise NotFound("the job's organization is gone", code="organization_unknown")
    writing: asyncio.Task[None] | None = None
    source = (
        _pooled_chunks(pool, collector, snapshot, start, chunk_rows, received_at)
        if pool is not None and snapshot.format == "ndjson"
        else _local_chunks(collector, snapshot, start, chunk_rows, received_at)
    )
    try:
        with gc_paused():
            current = await anext(source, None)
            written = 0
            while current is not None:
                writing = asyncio.create_task(_write_chunk(database, collector, clock, sender, job_id, *current))
                following = await anext(source, None)  # prepared while the database writes `current`
                await writing
                writing = None
                written += len(current[0])
                current = following
                if written >= _COLLECT_EVERY_ROWS:
                    gc.collect(1)  # cyclic garbage of requests served meanwhile
                    written = 0
    except Exception as exc:
        if writing is not None:
            writing.cancel()
            with contextlib.suppress(BaseException):
                await writing
        await source.aclose()
        logger.exception("collection job failed", extra={"job_id": job_id})
        async with database.transaction() as session:
            job = await bulk_jobs.job_for_update(session, job_id)
            if job is not None:
                job.status = "failed"
                job.error = str(exc)[:2000] if not isinstance(exc, Conflict) else exc.message
        raise
    async with database.transaction() as session:
        job = await bulk_jobs.job_for_update(session, job_id)
        if job is not None:
            job.status, job.finished_at = "completed", clock.now()


Chunk = tuple[Sequence[InputRow], PreparedBatch]


async def _local_chunks(
    collector: Collector, job: Job, start: int, chunk_rows: int, received_at: datetime
) -> AsyncGenerator[Chunk, None]:
    """Chunks read and prepared in a thread of this process, while the event loop writes the previous one.

    Reading and preparing are pure CPU, so the thread holds the interpreter lock, but the event loop takes it
    back within the switch interval (5 ms) whenever it has a request or a database reply to handle: no step
    of this stage holds the loop however long the chunk's lines are.
    """
    rows = job_rows(job, collector, start)
    while batch := await asyncio.to_thread(_take, rows, chunk_rows):
        validators = collector.current_validators()
        assert validators is not None  # noqa: S101 - loaded when the job started
        yield batch, await asyncio.to_thread(prepare, collector, validators, batch, received_at)


async def _pooled_chunks(
    pool: PreparePool, collector: Collector, job: Job, start: int, chunk_rows: int, received_at: datetime
) -> AsyncGenerator[Chunk, None]:
    """Chunks prepared by worker processes, up to _PREFETCH_CHUNKS ahead of the one being written."""
    blocks = ndjson_blocks(
        read_spool(_spool_path(job), collector.spool_key),
        chunk_rows,
        start,
        max_line_bytes=collector.settings.upload_max_line_bytes,
    )
    in_flight: deque[tuple[ChunkTask, Mapping[str, Any], asyncio.Future[PreparedColumns]]] = deque()

    def submit() -> None:
        block = next(blocks, None)
        validators = collector.current_validators()
        if block is None or validators is None:
            return
        first, _, blob = block
        task = ChunkTask(blob, first, job.form, received_at, collector.generation_key(), collector.loaded)
        in_flight.append((task, validators, asyncio.ensure_future(pool.prepare(task))))

    try:
        for _ in range(_PREFETCH_CHUNKS):
            submit()
        while in_flight:
            task, validators, future = in_flight.popleft()
            columns = await future
            submit()
            rows, prepared = as_prepared(task, columns, validators)
            if len(rows):
                yield rows, prepared
    finally:
        for _, _, future in in_flight:
            future.cancel()


def _take(rows: Iterator[InputRow], count: int) -> list[InputRow]:
    """The next `count` rows (fewer at the end), read and parsed; run in a thread."""
    return list(islice(rows, count))


async def _write_chunk(
    database: Database,
    collector: Collector,
    clock: Clock,
    sender: Sender,
    job_id: int,
    batch: Sequence[InputRow],
    prepared: PreparedBatch,
) -> None:
    """Decide, store and count one chunk with the job's new position, in one transaction."""
    last = batch.last_position if isinstance(batch, ChunkRows) else batch[-1].position
    async with database.transaction() as session:
        job = await bulk_jobs.job_for_update(session, job_id)
        if job is None or job.next_position >= last:
            return  # another worker committed this chunk
        result = await ingest(
            session,
            collector,
            sender,
            batch,
            received_at=job.received_at,
            dry_run=job.dry_run,
            sequential_repeats=True,
            forbid_foreign=False,
            job_id=job.id,
            prepared=prepared,
            detailed=False,
        )
        await table_writes.insert_rows(session, JobRejection, _rejection_rows(job, result))
        _summarise(job, result)
        _audit_foreign(session, clock, job, result)
        job.next_position = last


def _snapshot(job: Job) -> Job:
    """A detached copy of what reading the spool needs."""
    return Job(id=job.id, spool_path=job.spool_path, format=job.format, form=job.form)


async def reprocess_rejections(
    database: Database, collector: Collector, clock: Clock, job_id: int, chunk_rows: int = CHUNK_ROWS
) -> dict[str, int]:
    """Run a completed job's rejected rows again (after a code table was fixed); counts move, never double."""
    async with database.transaction() as session:
        job = await bulk_jobs.job_for_update(session, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
        if job.status != "completed":
            raise Conflict(
                "only a completed job's rejections can be re-run; resume it first",
                code="job_not_completed",
                field="status",
                value=job.status,
            )
        sender = await organizations.organization_by_id(session, job.organization_id)
        previous = {r.position: r for r in await bulk_jobs.job_rejections(session, job_id, 0, 10**9)}
        snapshot = _snapshot(job)
    assert sender is not None  # noqa: S101 - organizations are never deleted
    moved: Counter[str] = Counter()
    wanted = (row for row in job_rows(snapshot, collector) if row.position in previous)
    # Found by reading the whole spool: in a thread, or a job with few rejections would hold the loop throughout.
    while batch := await asyncio.to_thread(_take, wanted, chunk_rows):
        async with database.transaction() as session:
            job = await bulk_jobs.job_for_update(session, job_id)
            assert job is not None  # noqa: S101 - locked above, never deleted
            old = {row.position: previous[row.position] for row in batch}
            result = await ingest(
                session,
                collector,
                sender,
                batch,
                received_at=job.received_at,
                dry_run=job.dry_run,
                sequential_repeats=True,
                forbid_foreign=False,
                job_id=job.id,
                previously_rejected={
                    p: (r.form, [RecordError(**_error_fields(e)) for e in r.errors]) for p, r in old.items()
                },
            )
            _summarise(job, BatchResult.of([_as_rejected(row) for row in old.values()]), sign=-1)
            _summarise(job, result)
            await bulk_jobs.delete_job_rejections(session, job.organization_id, job.id, list(old))
            await table_writes.insert_rows(session, JobRejection, _rejection_rows(job, result))
            moved.update(result.tally)
    return dict(moved)


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "field": error["field"],
        "rule": error["rule"],
        "message": error["message"],
        "message_zh": error["message_zh"],
        "value": error.get("value"),
    }


def _as_rejected(row: JobRejection) -> RowOutcome:
    return RowOutcome(
        position=row.position,
        form=row.form,
        record_id=row.record_id,
        status=REJECTED,
        errors=[RecordError(**_error_fields(e)) for e in row.errors],
    )


class Jobs(Protocol):
    """Where the server hands its bulk jobs: JobRunner (this event loop) or JobProcesses (job_processes.py)."""

    def submit(self, job_id: int, size_bytes: int = 0) -> None: ...

    async def resume_unfinished(self) -> None: ...

    async def wait(self, job_id: int) -> None: ...

    async def close(self) -> None: ...


class JobRunner:
    """Runs jobs as tasks of the server's event loop; resumes unfinished ones when the server starts."""

    def __init__(
        self,
        database: Database,
        collector: Collector,
        clock: Clock,
        chunk_rows: int = CHUNK_ROWS,
        pool: PreparePool | None = None,
        pool_min_bytes: int = POOL_MIN_BYTES,
    ) -> None:
        self.database = database
        self.collector = collector
        self.clock = clock
        self.chunk_rows = chunk_rows
        self.pool = pool
        self.pool_min_bytes = pool_min_bytes
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def submit(self, job_id: int, size_bytes: int = 0) -> None:
        if job_id in self.tasks and not self.tasks[job_id].done():
            return
        for done in [key for key, task in self.tasks.items() if task.done()]:
            del self.tasks[done]
        # Worker processes for a large job, for any job while others run, and for every job once they are up:
        # prepared in this event loop, jobs would share one core with each other and with the requests (a
        # district's day of small jobs arriving one after another). Only the first small job of an idle server
        # is prepared here, rather than wait a second for the workers to start.
        warm = self.pool is not None and self.pool.started
        pool = self.pool if size_bytes >= self.pool_min_bytes or self.tasks or warm else None
        self.tasks[job_id] = asyncio.create_task(self._run(job_id, pool), name=f"collection-job-{job_id}")

    async def _run(self, job_id: int, pool: PreparePool | None) -> None:
        with contextlib.suppress(Exception):  # recorded on the job row by process_job
            await process_job(self.database, self.collector, self.clock, job_id, self.chunk_rows, pool)

    async def resume_unfinished(self) -> None:
        async with self.database.transaction() as session:
            unfinished = await bulk_jobs.unfinished_jobs(session)
        for job_id, size_bytes in unfinished:
            self.submit(job_id, size_bytes)

    async def wait(self, job_id: int) -> None:
        task = self.tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(BaseException):
                await task
        if self.pool is not None:
            self.pool.close()
