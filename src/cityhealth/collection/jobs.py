"""Bulk jobs: a task on the job queue (queue.py), processed in chunks, each chunk one transaction that also
advances the job's committed position.

The task is deferred in the transaction that records the job (service.receive_job). A job interrupted
anywhere (a worker killed, a restart, a failing chunk) resumes after its last committed chunk: the chunk that
was in flight rolled back whole, so nothing is counted twice. Two workers resuming the same job serialise on
the job row and the second skips chunks the first committed.

The loop is a two-stage pipeline: while chunk N is written (the database works on another core), chunk N+1
is read from the spool's frames and prepared (parse, validate, hash, serialise) — by the worker's prepare
processes for large NDJSON jobs (workers.py), else in a thread of this process, so that the event loop stays
free for requests and for the write's round trips. Chunk N+1 is only written after chunk N committed.
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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth import queue
from cityhealth.clock import Clock
from cityhealth.collection import bulk_priority
from cityhealth.collection.ingest import BatchResult, RowOutcome, ingest
from cityhealth.collection.lines import ndjson_blocks, ndjson_rows
from cityhealth.collection.metrics import field_key
from cityhealth.collection.models import Job, JobRejection
from cityhealth.collection.new_records import ColumnsPrepared
from cityhealth.collection.prepare import (
    REJECTED,
    Collector,
    InputRow,
    PreparedBatch,
    gc_paused,
    prepare,
)
from cityhealth.collection.repository import bulk_jobs, organizations, spool_frames, table_writes
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.rules import RecordError
from cityhealth.collection.spool import FRAME_BYTES, csv_rows, read_spool
from cityhealth.collection.workers import ChunkRows, ChunkTask, PreparedChunk, PreparePool
from cityhealth.db.engine import Database
from cityhealth.db.failure_kinds import is_transient
from cityhealth.errors import Conflict, NotFound
from cityhealth.security.audit import Action, Outcome, record

logger = logging.getLogger("cityhealth.collection.jobs")
# Rows per transaction (CITYHEALTH_BULK_CHUNK_ROWS). Each of a chunk's write steps (deciding, building the
# rows, counting) runs in the event loop in one go, and the chunk's transaction holds the unit's lock, which
# the unit's real-time batches wait for: the chunk bounds how long a request can wait behind it. 10,000 rows
# held the loop for 30-110 ms per step, 2,500 rows for at most ~30 ms, at the same CPU per record (100k
# records, PostgreSQL: 41.3 against 42.1 µs). The chunks in flight keep a worker near 155 MB, each prepare
# process near 82 MB.
CHUNK_ROWS = 2500
_PREFETCH_CHUNKS = 2  # chunks handed to the workers ahead of the one being written (one per worker here)
_COLLECT_EVERY_ROWS = 100_000
# Jobs smaller than this are prepared in-process: starting a prepare process costs about a second.
POOL_MIN_BYTES = 8 << 20
PROCESS_JOB = "collection.process_job"
# The per-process things a task uses (queue.Runtime.resource): made once per worker or server.
COLLECTOR = "collection.collector"
PREPARE_POOL = "collection.prepare_pool"
CHUNK_ROWS_SETTING = "collection.chunk_rows"  # tests set smaller chunks through these two
POOL_MIN_BYTES_SETTING = "collection.pool_min_bytes"
# A job whose task starts this many times without committing a chunk is stopped there, failed with the reason:
# a record that takes its worker down (a crash, the memory's limit) would otherwise do so on every retry, for ever.
MAX_RUNS_WITHOUT_PROGRESS = 5


def _spool_id(job: Job) -> str:
    if job.spool_id is None:
        raise Conflict(
            f"the raw upload of job {job.id} has been purged; it cannot be processed again",
            code="raw_payload_purged",
            field="job",
            value=job.id,
        )
    return job.spool_id


def job_rows(
    job: Job, collector: Collector, database: Database, loop: asyncio.AbstractEventLoop, after: int = 0
) -> Iterator[InputRow]:
    """The job's rows after `after`, read from its spool; consumed in a thread, `loop` fetches the frames."""
    chunks = read_spool(database, collector.spool_key, _spool_id(job), loop)
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
    pool_min_bytes: int = POOL_MIN_BYTES,
    backend_nice: int | None = None,
) -> None:
    """Process a queued, running or failed job from its last committed position to the end.

    With a pool, an NDJSON job of `pool_min_bytes` or more (any job, once the pool is up) has its chunks
    prepared in the pool's processes; otherwise in a thread of this process. `backend_nice`: each chunk's
    database backend at that CPU priority while it writes (bulk_priority.py).
    """
    async with database.transaction() as session:
        job = await bulk_jobs.job_for_update(session, job_id)
        if job is None or job.status == "completed":
            return
        if job.runs_without_progress >= MAX_RUNS_WITHOUT_PROGRESS:
            _stop_stuck(job, clock)
            return
        job.runs_without_progress += 1
        job.status, job.error = "running", None
        job.started_at = job.started_at or clock.now()
        sender = await organizations.organization_by_id(session, job.organization_id)
        start, snapshot, received_at = job.next_position, _snapshot(job), job.received_at
        if pool is not None and not pool.started and await _text_bytes(session, job) < pool_min_bytes:
            pool = None  # a small job of an idle worker: not worth starting the processes for
        await collector.validators(session)
    if sender is None:  # pragma: no cover - organizations are never deleted
        raise NotFound("the job's organization is gone", code="organization_unknown")
    writing: asyncio.Task[None] | None = None
    source = (
        _pooled_chunks(pool, collector, database, snapshot, start, chunk_rows, received_at)
        if pool is not None and snapshot.format == "ndjson"
        else _local_chunks(collector, database, snapshot, start, chunk_rows, received_at)
    )
    try:
        with gc_paused():
            current = await anext(source, None)
            written = 0
            while current is not None:
                writing = asyncio.create_task(
                    _write_chunk(database, collector, clock, sender, job_id, *current, backend_nice=backend_nice)
                )
                following = await anext(source, None)  # prepared while the database writes `current`
                await writing
                writing = None
                await database.let_writers_in()  # on SQLite, a waiting booking's turn between chunks
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
        if is_transient(exc):
            # Not the upload's fault: the job stays running from its last committed chunk, and the runner runs
            # its task again after a pause (queue.Interrupted), and logs it once.
            raise
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


def _stop_stuck(job: Job, clock: Clock) -> None:
    if job.status != "failed":
        logger.error("collection job stopped: its runs keep ending before its next chunk commits",
                     extra={"job_id": job.id, "position": job.next_position})
        job.finished_at = clock.now()
    job.status = "failed"
    job.error = (
        f"stopped at record {job.next_position + 1}: the job was started {job.runs_without_progress} times and each "
        f"run ended before the chunk from that record on was stored (its worker stopped or crashed; a record there "
        f"may take it down). The {job.next_position} records before it are stored. Rerun the job once the cause is "
        "found."
    )


async def _text_bytes(session: AsyncSession, job: Job) -> int:
    """The job's text size, at least: a gzip upload inflates to several times the bytes received (10-20 for
    NDJSON), so its spool's full frames are counted, not what came over the network."""
    if not job.compressed or job.spool_id is None:
        return job.bytes_received
    last = await spool_frames.last_frame_index(session, job.spool_id)
    return max(job.bytes_received, (last or 0) * FRAME_BYTES)


Chunk = tuple[Sequence[InputRow], PreparedBatch | ColumnsPrepared]


async def _local_chunks(
    collector: Collector, database: Database, job: Job, start: int, chunk_rows: int, received_at: datetime
) -> AsyncGenerator[Chunk, None]:
    """Chunks read and prepared in a thread of this process, while the event loop writes the previous one.

    Reading and preparing are pure CPU, so the thread holds the interpreter lock, but the event loop takes it
    back within the switch interval (5 ms) whenever it has a request or a database reply to handle: no step
    of this stage holds the loop however long the chunk's lines are.
    """
    rows = job_rows(job, collector, database, asyncio.get_running_loop(), start)
    while batch := await asyncio.to_thread(_take, rows, chunk_rows):
        validators = collector.current_validators()
        assert validators is not None  # noqa: S101 - loaded when the job started
        yield batch, await asyncio.to_thread(prepare, collector, validators, batch, received_at)


async def _pooled_chunks(
    pool: PreparePool,
    collector: Collector,
    database: Database,
    job: Job,
    start: int,
    chunk_rows: int,
    received_at: datetime,
) -> AsyncGenerator[Chunk, None]:
    """Chunks prepared by the pool's processes, up to _PREFETCH_CHUNKS ahead of the one being written."""
    blocks = ndjson_blocks(
        read_spool(database, collector.spool_key, _spool_id(job), asyncio.get_running_loop()),
        chunk_rows,
        start,
        max_line_bytes=collector.settings.upload_max_line_bytes,
    )
    in_flight: deque[tuple[ChunkTask, Mapping[str, Any], asyncio.Future[PreparedChunk]]] = deque()

    async def submit() -> None:
        # Read in a thread: the frames are fetched through this loop, and opened (decrypted, inflated) there.
        block = await asyncio.to_thread(next, blocks, None)
        validators = collector.current_validators()
        if block is None or validators is None:
            return
        first, _, blob = block
        task = ChunkTask(
            blob,
            first,
            job.form,
            received_at,
            collector.generation_key(),
            collector.loaded,
            copy_rows=not database.is_sqlite,
        )
        in_flight.append((task, validators, asyncio.ensure_future(pool.prepare(task))))

    try:
        for _ in range(_PREFETCH_CHUNKS):
            await submit()
        while in_flight:
            task, validators, future = in_flight.popleft()
            chunk = await future
            await submit()
            rows = ChunkRows(task, chunk)
            if len(rows):  # decided by its columns if it is a chunk of new records (new_records.py)
                yield rows, ColumnsPrepared(validators, task.received_at, chunk.columns)
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
    prepared: PreparedBatch | ColumnsPrepared,
    *,
    backend_nice: int | None = None,
) -> None:
    """Decide, store and count one chunk with the job's new position, in one transaction."""
    last = batch.last_position if isinstance(batch, ChunkRows) else batch[-1].position
    async with database.transaction() as session, bulk_priority.lowered(session, backend_nice):
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
        job.runs_without_progress = 0


def _snapshot(job: Job) -> Job:
    """A detached copy of what reading the spool needs."""
    return Job(id=job.id, spool_id=job.spool_id, format=job.format, form=job.form)


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
    rows = job_rows(snapshot, collector, database, asyncio.get_running_loop())
    wanted = (row for row in rows if row.position in previous)
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


@queue.task(PROCESS_JOB, lock_by="job_id")
async def run_job(runtime: queue.Runtime, job_id: int) -> None:
    """The bulk job task: one job from its last committed chunk to the end (deferred by receive_job)."""
    settings = runtime.settings
    lowered = bulk_priority.may_lower(settings.effective_database_url, settings.worker_nice)
    nice = settings.worker_nice if lowered else None
    await process_job(
        runtime.database,
        collector_of(runtime),
        runtime.clock,
        job_id,
        runtime.resources.get(CHUNK_ROWS_SETTING, runtime.settings.bulk_chunk_rows),
        pool_of(runtime),
        runtime.resources.get(POOL_MIN_BYTES_SETTING, POOL_MIN_BYTES),
        nice,
    )


@queue.recover(PROCESS_JOB)
async def unfinished_jobs(runtime: queue.Runtime) -> list[dict[str, Any]]:
    """The jobs left queued or running (by a process that stopped): their tasks are deferred again."""
    async with runtime.database.transaction() as session:
        return [{"job_id": job_id} for job_id, _ in await bulk_jobs.unfinished_jobs(session)]


def collector_of(runtime: queue.Runtime) -> Collector:
    return runtime.resource(COLLECTOR, lambda: Collector(runtime.settings))


def pool_of(runtime: queue.Runtime) -> PreparePool:
    """The process's prepare pool, made on first use and closed with the runtime."""

    def make() -> PreparePool:
        pool = PreparePool(runtime.settings)
        runtime.closers.append(pool.close)
        return pool

    return runtime.resource(PREPARE_POOL, make)


class JobWaiter:
    """Waits for jobs wherever they run: in this process, or in a worker on another machine (their rows)."""

    def __init__(self, database: Database, poll_s: float = 0.05) -> None:
        self.database = database
        self.poll_s = poll_s

    async def wait(self, job_id: int) -> str | None:
        """Until the job completed or failed; its final status (None: no such job)."""
        while True:
            async with self.database.transaction() as session:
                status = await bulk_jobs.job_status(session, job_id)
            if status in (None, "completed", "failed"):
                return status
            await asyncio.sleep(self.poll_s)
