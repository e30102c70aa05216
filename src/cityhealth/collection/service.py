"""Collection use cases: receive a bulk job, read jobs, code tables, purge. Real-time uploads: uploads.py.

A unit's rejected records (the dashboard's drill-down) are read by `rejected_records`, kept in drilldown.py.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth import queue
from cityhealth.clock import Clock, business_date
from cityhealth.collection.drilldown import rejected_records as rejected_records
from cityhealth.collection.ingest import Collector
from cityhealth.collection.jobs import PROCESS_JOB
from cityhealth.collection.models import Job, JobRejection, RawPayload
from cityhealth.collection.public_health import DBP_TARGET as DBP_TARGET
from cityhealth.collection.public_health import FBG_TARGET as FBG_TARGET
from cityhealth.collection.public_health import SBP_TARGET as SBP_TARGET
from cityhealth.collection.public_health import classify_followup as classify_followup
from cityhealth.collection.public_health import followup_controlled as followup_controlled
from cityhealth.collection.record_feed import StoredRecord as StoredRecord
from cityhealth.collection.record_feed import records_received_after as records_received_after
from cityhealth.collection.repository import bulk_jobs, code_tables, organizations, raw_payloads, spool_frames
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.spool import SUPPORTED_ENCODINGS, BodyDecoder, SpoolWriter, UploadLimits, csv_header
from cityhealth.collection.standard import LOADABLE_TABLES, load_standard
from cityhealth.collection.validation.columns import ICD9CM3, ICD10
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record, record_now
from cityhealth.security.principals import Principal, Scope

MAX_BATCH_RECORDS = 1000


async def sender_for(session: AsyncSession, database: Database, clock: Clock, principal: Principal) -> Sender:
    """The organization a machine client uploads for; refused (and audited) when there is none."""
    sender = None
    if principal.organization_id is not None:
        sender = await organizations.organization_by_id(session, principal.organization_id)
    if sender is None or not is_active(sender, clock):
        await deny_upload(database, clock, principal, "the client's organization is unknown or inactive")
        raise Forbidden(
            "this client is not bound to an active registered organization",
            code="organization_unknown",
            field="organization",
            value=principal.organization_id,
        )
    return sender


async def deny_upload(database: Database, clock: Clock, principal: Principal, detail: str) -> None:
    """Audit a refused upload (in a transaction of its own: the refusal rolls the request's work back)."""
    await record_now(database, clock, principal, Action.DENIED, "collection_upload", detail=detail)


def is_active(sender: Sender, clock: Clock) -> bool:
    """The unit may send: registered and not past its `active_to` day."""
    return sender.active_to is None or sender.active_to >= business_date(clock.now())


def known_form(form: str, field: str = "form") -> None:
    """Refuse a form named in a query or body (the request is at fault: 422); `form_or_404` is for a path."""
    if form not in load_standard().forms:
        raise ValidationFailed(
            f"unknown form {form!r}; GET /api/collection/standard lists the forms",
            code="unknown_form",
            field=field,
            value=form,
            rule="form.unknown",
        )


def form_or_404(form: str) -> None:
    if form not in load_standard().forms:
        raise NotFound(
            f"unknown form {form!r}; GET /api/collection/standard lists the forms",
            code="unknown_form",
            field="form",
            value=form,
            rule="form.unknown",
        )


async def receive_job(
    stream: AsyncIterator[bytes],
    *,
    database: Database,
    collector: Collector,
    clock: Clock,
    settings: Settings,
    principal: Principal,
    media_type: str,
    content_encoding: str,
    format_: str | None,
    form: str | None,
    encoding: str | None,
    dry_run: bool,
    content_length: int | None = None,
) -> tuple[Job, bool]:
    """Stream a bulk upload to a sealed spool, checking limits, gzip and encoding; returns (job, created).

    A body past a limit (UploadLimits) is refused (413) as soon as it passes it; its partial spool is removed
    and no job is recorded. The job's task is deferred in the transaction that records the job.
    """
    async with database.transaction() as session:
        sender = await sender_for(session, database, clock, principal)
    media, _, params = media_type.partition(";")
    media = media.strip().lower()
    fmt = format_ or ("csv" if media in ("text/csv", "application/csv") else "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise ValidationFailed(
            f"format must be ndjson or csv, not {fmt!r}",
            code="invalid_format",
            field="format",
            value=fmt,
            rule="format.unsupported",
        )
    if form is not None:
        known_form(form)
    declared = encoding
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and declared is None:
            declared = value.strip().strip('"')
    codec = SUPPORTED_ENCODINGS.get((declared or "utf-8").lower())
    if codec is None:
        raise ValidationFailed(
            f"encoding {declared!r} is not supported; send UTF-8 or declare GB18030",
            code="encoding_unsupported",
            field="encoding",
            value=declared,
            rule="encoding.unsupported",
        )
    compressed = content_encoding.strip().lower() in ("gzip", "x-gzip")
    if content_encoding.strip() and not compressed:
        raise ValidationFailed(
            f"content encoding {content_encoding!r} is not supported (gzip is)",
            code="content_encoding_unsupported",
            field="content-encoding",
            value=content_encoding,
            rule="compression.unsupported",
        )
    limits = UploadLimits.of(settings)
    if content_length is not None:
        limits.check_declared(content_length)
    writer = SpoolWriter(database, collector.spool_key, clock.now(), settings.storage_reserve_bytes)
    spool = writer.spool_id
    decoder = BodyDecoder(compressed=compressed, encoding=codec, limits=limits)
    try:
        # Inflating, decoding, checking and sealing are pure CPU: in a thread, where zlib and zstd release the
        # interpreter lock, so the event loop goes on answering requests (in the loop, a network chunk's
        # inflation held it for milliseconds at a time and real-time requests queued behind the upload).
        async for chunk in stream:
            await writer.store(await asyncio.to_thread(writer.seal, decoder.feed(chunk)))
        await writer.store(await asyncio.to_thread(writer.seal, decoder.finish(), last=True))
        if not decoder.head.strip():
            raise ValidationFailed("the upload is empty", code="empty_upload", field="body", rule="body.empty")
        if fmt == "csv":
            _check_csv_header(csv_header(bytes(decoder.head)), form)
    except BaseException:
        await asyncio.shield(writer.discard())
        raise
    digest = decoder.sha256.hexdigest()
    dedupe = hashlib.sha256(f"{digest}|{fmt}|{form}|{codec}|{compressed}|{dry_run}".encode()).hexdigest()
    now = clock.now()
    try:
        async with database.transaction() as session:
            existing = await bulk_jobs.job_by_dedupe_key(session, sender.id, dedupe)
            if existing is not None:
                await spool_frames.delete_spool(session, spool)
                return existing, False
            job = Job(
                organization_id=sender.id,
                client=principal.subject,
                status="queued",
                format=fmt,
                form=form,
                encoding=codec,
                compressed=compressed,
                dry_run=dry_run,
                content_sha256=digest,
                dedupe_key=dedupe,
                spool_id=spool,
                bytes_received=decoder.bytes_in,
                next_position=0,
                counts={},
                rejections_by_rule={},
                rejections_by_field={},
                error=None,
                received_at=now,
            )
            session.add(job)
            await session.flush()
            session.add(
                RawPayload(
                    organization_id=sender.id,
                    job_id=job.id,
                    received_at=now,
                    content_type=media_type[:96],
                    body=None,
                    spool_id=spool,
                    bytes_received=decoder.bytes_in,
                    purged_at=None,
                )
            )
            record(session, clock, principal, Action.CREATE, "collection_job", resource_id=job.id)
            await queue.defer(session, PROCESS_JOB, job_id=job.id)
    except IntegrityError:  # the same file raced in twice: the first one's job is the job
        async with database.transaction() as session:
            await spool_frames.delete_spool(session, spool)
            found = await bulk_jobs.job_by_dedupe_key(session, sender.id, dedupe)
        if found is None:  # pragma: no cover - the unique key is what failed
            raise
        return found, False
    return job, True


def _check_csv_header(header: list[str], form: str | None) -> None:
    standard = load_standard()
    if form is None and "form" not in header:
        raise ValidationFailed(
            "a CSV upload names its form (?form=…) or carries a form column",
            code="form_required",
            field="form",
            rule="form.required",
        )
    if form is None:
        return  # per-row forms: columns are checked per record
    spec = standard.forms[form]
    known = {field.name for field in spec.fields} | {"form"}
    unknown = [name for name in header if name not in known]
    if unknown:
        raise ValidationFailed(
            f"CSV columns {', '.join(unknown)} are not fields of form {form}",
            code="csv_header",
            field=unknown[0],
            value=unknown[0],
            rule="csv.header",
        )
    missing = [field.name for field in spec.fields if field.required and field.name not in header]
    if missing:
        raise ValidationFailed(
            f"CSV header lacks required columns {', '.join(missing)}",
            code="csv_header",
            field=missing[0],
            rule="csv.header",
        )


# Who may read a job at all (the route's guard and the object rule below): its sender, or an operator.
JOB_READ_SCOPES = (Scope.COLLECTION_UPLOAD, Scope.COLLECTION_READ)


async def job_for(session: AsyncSession, principal: Principal, job_id: int) -> Job:
    """A job the caller may see, else 404: a sender sees its own organization's jobs only; platform-wide
    collection readers (operators, not bound to an organization) see any."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
    # Belonging to the job's organization is not enough: its other staff (an organization administrator,
    # a reading-centre doctor) hold no collection scope, and the rejected rows carry patients' data.
    if not principal.has_any(*JOB_READ_SCOPES):
        visible = False
    elif principal.organization_id is not None:
        visible = job.organization_id == principal.organization_id
    else:
        visible = principal.has(Scope.COLLECTION_READ)
    if not visible:
        raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
    return job


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "format": job.format,
        "form": job.form,
        "encoding": job.encoding,
        "compressed": job.compressed,
        "dry_run": job.dry_run,
        "bytes_received": job.bytes_received,
        "rows_processed": job.next_position,
        "counts": job.counts,
        "rejections_by_rule": job.rejections_by_rule,
        "rejections_by_field": job.rejections_by_field,
        "error": job.error,
        "received_at": job.received_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "rejections_url": f"/api/collection/jobs/{job.id}/rejections",
    }


# --- operator settings -------------------------------------------------------------------------------------


def read_code_file(path: Path, table_id: str) -> dict[str, str]:
    """`code,name` or `code<TAB>name` lines (UTF-8 or GB18030); a header line is skipped; shapes checked."""
    if table_id not in LOADABLE_TABLES:
        raise ValidationFailed(
            f"table must be one of {', '.join(LOADABLE_TABLES)}",
            code="invalid_table",
            field="table",
            value=table_id,
            rule="code.not_in_table",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    shape = ICD10 if table_id == "ICD-10" else ICD9CM3
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        separator = "\t" if "\t" in line else ","
        code, _, name = line.partition(separator)
        code, name = code.strip().strip('"'), name.strip().strip('"')
        if not shape.fullmatch(code):
            if number == 1:
                continue  # a header
            raise ValidationFailed(
                f"line {number}: {code!r} is not shaped like a {table_id} code",
                code="invalid_code_file",
                field="code",
                value=code,
                rule="code.shape",
            )
        if not name:
            raise ValidationFailed(
                f"line {number}: code {code} has no name",
                code="invalid_code_file",
                field="name",
                value=code,
                rule="required",
            )
        entries[code] = name
    if not entries:
        raise ValidationFailed("the file holds no codes", code="invalid_code_file", field="file", rule="body.empty")
    return entries


async def load_codes(session: AsyncSession, clock: Clock, table_id: str, path: Path) -> tuple[int, int]:
    """Replace a loaded code table; validators pick the new generation up on their next batch."""
    entries = read_code_file(path, table_id)
    generation = await code_tables.replace_code_table(session, table_id, entries, path.name, clock.now())
    return len(entries), generation


# An upload cut off mid-stream (a crash between its frames and its job) leaves frames no payload names;
# older than this they are deleted with the purge. Far longer than any upload takes.
ORPHAN_FRAMES_AFTER = timedelta(days=1)


async def purge(session: AsyncSession, clock: Clock, retention_days: int) -> int:
    """Delete raw payloads received before the retention period; their jobs can no longer be re-run."""
    now = clock.now()
    before = now - timedelta(days=retention_days)
    purged = 0
    for payload in await raw_payloads.expired_payloads(session, before):
        if payload.spool_id:
            await spool_frames.delete_spool(session, payload.spool_id)
        if payload.job_id is not None:
            job = await session.get(Job, payload.job_id)
            if job is not None:
                job.spool_id = None
        payload.body, payload.spool_id, payload.purged_at = None, None, now
        purged += 1
    await session.flush()
    await spool_frames.delete_orphan_frames(session, now - ORPHAN_FRAMES_AFTER)
    return purged


async def job_to_rerun(session: AsyncSession, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", code="job_not_found", field="job", value=job_id)
    if job.spool_id is None:
        raise Conflict(
            f"the raw upload of job {job_id} has been purged", code="raw_payload_purged", field="job", value=job_id
        )
    job.runs_without_progress = 0  # an operator's rerun gives a stopped job its runs again
    return job


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def job_rejections_page(session: AsyncSession, job_id: int, after: int, limit: int) -> list[JobRejection]:
    """The job's rejected rows after position `after`, in order: a page of the rejection export."""
    return await bulk_jobs.job_rejections(session, job_id, after, limit)
