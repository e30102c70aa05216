"""Bulk jobs: processed in chunks, each chunk one transaction that also advances the job's committed position.

A job interrupted anywhere (crash, restart, a failing chunk) resumes after its last committed chunk: the
chunk that was in flight rolled back whole, so nothing is counted twice. Two workers resuming the same job
serialise on the job row and the second skips chunks the first committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection import repository
from cityhealth.collection.ingest import REJECTED, BatchResult, Collector, InputRow, ingest
from cityhealth.collection.metrics import field_key
from cityhealth.collection.models import Job, JobRejection
from cityhealth.collection.rules import RecordError
from cityhealth.collection.spool import csv_rows, ndjson_rows, read_spool
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, NotFound
from cityhealth.security.audit import Action, Outcome, record

logger = logging.getLogger("cityhealth.collection.jobs")
CHUNK_ROWS = 5000


def job_rows(job: Job, key: bytes, after: int = 0) -> Iterator[InputRow]:
    if job.spool_path is None or not Path(job.spool_path).exists():
        raise Conflict(
            f"the raw upload of job {job.id} has been purged; it cannot be processed again",
            code="raw_payload_purged",
            field="job",
            value=job.id,
        )
    chunks = read_spool(Path(job.spool_path), key)
    reader = csv_rows if job.format == "csv" else ndjson_rows
    return reader(chunks, job.form, after)


def _summarise(job: Job, result: BatchResult, sign: int = 1) -> None:
    counts = Counter(job.counts)
    rules = Counter(job.rejections_by_rule)
    fields = Counter(job.rejections_by_field)
    for outcome in result.outcomes:
        counts[outcome.status] += sign
        counts["received"] += sign
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
        for outcome in result.outcomes
        if outcome.status == REJECTED
    ]


def _audit_foreign(session: AsyncSession, clock: Clock, job: Job, result: BatchResult) -> None:
    foreign = sum(1 for o in result.outcomes for e in o.errors if e.rule == "org_code.not_sender")
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
    database: Database, collector: Collector, clock: Clock, job_id: int, chunk_rows: int = CHUNK_ROWS
) -> None:
    """Process a queued, running or failed job from its last committed position to the end."""
    async with database.transaction() as session:
        job = await repository.job_for_update(session, job_id)
        if job is None or job.status == "completed":
            return
        job.status, job.error = "running", None
        job.started_at = job.started_at or clock.now()
        sender = await repository.organization_by_id(session, job.organization_id)
        start, snapshot = job.next_position, _snapshot(job)
    if sender is None:  # pragma: no cover - organizations are never deleted
        raise NotFound("the job's organization is gone", code="organization_unknown")
    try:
        rows = job_rows(snapshot, collector.spool_key, start)
        while batch := list(islice(rows, chunk_rows)):
            async with database.transaction() as session:
                job = await repository.job_for_update(session, job_id)
                if job is None or job.next_position >= batch[-1].position:
                    continue  # another worker committed this chunk
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
                )
                await repository.insert_rows(session, JobRejection, _rejection_rows(job, result))
                _summarise(job, result)
                _audit_foreign(session, clock, job, result)
                job.next_position = batch[-1].position
            await asyncio.sleep(0)  # let requests in between chunks
    except Exception as exc:
        logger.exception("collection job failed", extra={"job_id": job_id})
        async with database.transaction() as session:
            job = await repository.job_for_update(session, job_id)
            if job is not None:
                job.status = "failed"
                job.error = str(exc)[:2000] if not isinstance(exc, Conflict) else exc.message
        raise
    async with database.transaction() as session:
        job = await repository.job_for_update(session, job_id)
        if job is not None:
            job.status, job.finished_at = "completed", clock.now()


def _snapshot(job: Job) -> Job:
    """A detached copy of what reading the spool needs."""
    return Job(id=job.id, spool_path=job.spool_path, format=job.format, form=job.form)


async def reprocess_rejections(
    database: Database, collector: Collector, clock: Clock, job_id: int, chunk_rows: int = CHUNK_ROWS
) -> dict[str, int]:
    """Run a completed job's rejected rows again (after a code table was fixed); counts move, never double."""
    async with database.transaction() as session:
        job = await repository.job_for_update(session, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
        if job.status != "completed":
            raise Conflict(
                "only a completed job's rejections can be re-run; resume it first",
                code="job_not_completed",
                field="status",
                value=job.status,
            )
        sender = await repository.organization_by_id(session, job.organization_id)
        previous = {r.position: r for r in await repository.job_rejections(session, job_id, 0, 10**9)}
        snapshot = _snapshot(job)
    assert sender is not None  # noqa: S101 - organizations are never deleted
    moved: Counter[str] = Counter()
    wanted = (row for row in job_rows(snapshot, collector.spool_key) if row.position in previous)
    while batch := list(islice(wanted, chunk_rows)):
        async with database.transaction() as session:
            job = await repository.job_for_update(session, job_id)
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
            _summarise(job, BatchResult([_as_rejected(old[o.position]) for o in result.outcomes]), sign=-1)
            _summarise(job, result)
            await repository.delete_job_rejections(session, job.organization_id, job.id, list(old))
            await repository.insert_rows(session, JobRejection, _rejection_rows(job, result))
            moved.update(outcome.status for outcome in result.outcomes)
    return dict(moved)


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "field": error["field"],
        "rule": error["rule"],
        "message": error["message"],
        "message_zh": error["message_zh"],
        "value": error.get("value"),
    }


def _as_rejected(row: JobRejection) -> Any:
    from cityhealth.collection.ingest import RowOutcome

    return RowOutcome(
        position=row.position,
        form=row.form,
        record_id=row.record_id,
        status=REJECTED,
        errors=[RecordError(**_error_fields(e)) for e in row.errors],
    )


class JobRunner:
    """Runs jobs as tasks of the server's event loop; resumes unfinished ones when the server starts."""

    def __init__(self, database: Database, collector: Collector, clock: Clock, chunk_rows: int = CHUNK_ROWS) -> None:
        self.database = database
        self.collector = collector
        self.clock = clock
        self.chunk_rows = chunk_rows
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def submit(self, job_id: int) -> None:
        if job_id in self.tasks and not self.tasks[job_id].done():
            return
        self.tasks[job_id] = asyncio.create_task(self._run(job_id), name=f"collection-job-{job_id}")

    async def _run(self, job_id: int) -> None:
        with contextlib.suppress(Exception):  # recorded on the job row by process_job
            await process_job(self.database, self.collector, self.clock, job_id, self.chunk_rows)

    async def resume_unfinished(self) -> None:
        async with self.database.transaction() as session:
            ids = await repository.unfinished_job_ids(session)
        for job_id in ids:
            self.submit(job_id)

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
