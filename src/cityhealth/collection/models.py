"""Collection tables: stored records and their versions, upload jobs, raw payloads, and the quality aggregates.

Every table that grows with the data leads its key with `organization_id`, the distribution key a sharded
PostgreSQL (Citus) would use (docs/scaling.md). The aggregates are maintained in the same transaction as the
records they count, so the quality report reads them and never the records.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

_BIGINT = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY

# Record.conformance: where a record stands in its group's real-time conformance (domain.md §3).
NOT_COUNTED = 0  # not a form of the outpatient/inpatient groups, or no longer an accepted record
IN_BASIS = 1  # counted in the basis, not (or no longer) conforming
CONFORMING = 2  # counted in the basis and in the conforming numerator


class Record(Base):
    """The current version of one record, keyed by the sender's own id (组织, 表单, 记录标识)."""

    __tablename__ = "collection_records"
    # The holders of a health record number: only public-health records carry one, so the index stays small.
    __table_args__ = (
        Index(
            "ix_collection_records_health_record_no",
            "organization_id",
            "form",
            "health_record_no",
            postgresql_where=text("health_record_no IS NOT NULL"),
            sqlite_where=text("health_record_no IS NOT NULL"),
        ),
        # The order of receipt, which the records room's linker follows (a keyset on the four columns): the
        # timestamp leads, so new rows land at the index's right edge.
        Index("ix_collection_records_received", "received_at", "organization_id", "form", "record_id"),
    )

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[int] = mapped_column(SmallInteger)  # 1 new, 2 amended, 3 revoked
    payload_hash: Mapped[str] = mapped_column(String(32))  # keyed hash of the normalised record
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)  # personal fields encrypted (FieldCipher)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    event_month: Mapped[int] = mapped_column(Integer)  # yyyymm, Asia/Shanghai
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    conformance: Mapped[int] = mapped_column(SmallInteger)
    conformance_month: Mapped[int | None] = mapped_column(Integer)  # the month its basis was counted in
    job_id: Mapped[int | None] = mapped_column(_BIGINT)
    # The health record number a public-health record holds (its record_no or health_record_no), else None:
    # a number stays managed while a live record holds it, and an amendment may move it to another number.
    health_record_no: Mapped[str | None] = mapped_column(String(17))


class RecordVersion(Base):
    """A superseded version (the current one lives in collection_records): together, every version."""

    __tablename__ = "collection_record_versions"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[int] = mapped_column(SmallInteger)
    payload_hash: Mapped[str] = mapped_column(String(32))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime] = mapped_column(UTCDateTime)


JOB_STATUSES = ("queued", "running", "completed", "failed")


class Job(Base):
    """A bulk upload: the spooled file, how far processing has committed, and its summary."""

    __tablename__ = "collection_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        # A retried upload of the same file with the same parameters is the same job.
        UniqueConstraint("organization_id", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer, index=True)
    client: Mapped[str] = mapped_column(String(96))  # the uploading principal's subject
    status: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))  # ndjson | csv
    form: Mapped[str | None] = mapped_column(String(32))  # default form (required for CSV)
    encoding: Mapped[str] = mapped_column(String(16))  # as declared; the spool is always UTF-8
    compressed: Mapped[bool] = mapped_column(Boolean)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    content_sha256: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    spool_id: Mapped[str | None] = mapped_column(String(255))  # its frames in collection_spool_frames; None: purged
    bytes_received: Mapped[int] = mapped_column(BigInteger)
    next_position: Mapped[int] = mapped_column(BigInteger)  # rows committed so far (positions are 1-based)
    # Runs of its task started since a chunk last committed (jobs.MAX_RUNS_WITHOUT_PROGRESS); a rerun resets it.
    runs_without_progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    rejections_by_rule: Mapped[dict[str, int]] = mapped_column(JSON)
    rejections_by_field: Mapped[dict[str, int]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRejection(Base):
    """A rejected row of a job: its position, id and errors (personal values masked)."""

    __tablename__ = "collection_job_rejections"
    # Holds personal data only masked: the test suite's harness scans its rows for whole ID and mobile numbers.
    __table_args__ = ({"info": {"masked_personal_data": True}},)

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    form: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    row: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the row as sent, personal fields masked


class RawPayload(Base):
    """What a sender actually sent, encrypted, kept for the retention period (default 90 days)."""

    __tablename__ = "collection_raw_payloads"
    __table_args__ = (Index("ix_collection_raw_payloads_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(_BIGINT)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_type: Mapped[str] = mapped_column(String(96))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # real-time batches: zlib, then AES-GCM
    spool_id: Mapped[str | None] = mapped_column(String(255))  # bulk jobs: the sealed spool's frames
    bytes_received: Mapped[int] = mapped_column(BigInteger)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SpoolFrame(Base):
    """One sealed frame of a bulk upload's spool (collection/spool.py): compressed, then encrypted and bound
    to its spool, its index and whether it is the last. Kept in the database so that every worker reads it."""

    __tablename__ = "collection_spool_frames"

    spool_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DailyCount(Base):
    """Per unit, per upload day (Asia/Shanghai), per form: what arrived and what became of it."""

    __tablename__ = "collection_daily_counts"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)  # new records stored
    amended: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    flagged: Mapped[int] = mapped_column(BigInteger, default=0)  # follow-ups whose classification disagrees


class RejectionCount(Base):
    __tablename__ = "collection_rejection_counts"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(48), primary_key=True)
    field: Mapped[str] = mapped_column(String(96), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Workload(Base):
    """业务量日报: the latest daily workload report per unit and day (a re-sent report replaces)."""

    __tablename__ = "collection_workload"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visits: Mapped[int] = mapped_column(BigInteger)
    discharges: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[str] = mapped_column(String(64))


class Conformance(Base):
    """实时数据符合率 counters by the month of the events (domain.md §3)."""

    __tablename__ = "collection_conformance"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)  # yyyymm
    group: Mapped[str] = mapped_column(String(16), primary_key=True)  # outpatient | inpatient
    basis: Mapped[int] = mapped_column(BigInteger, default=0)
    conforming: Mapped[int] = mapped_column(BigInteger, default=0)


class MonthlyTotal(Base):
    """Records stored (new, amended, revoked) per unit and upload month: the running cumulative total."""

    __tablename__ = "collection_monthly_totals"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    stored: Mapped[int] = mapped_column(BigInteger, default=0)


GROUPS = ("outpatient", "inpatient")


class Enrolment(Base):
    """A unit enrolled in real-time monitoring for a group, from a date (to a date)."""

    __tablename__ = "collection_enrolments"
    __table_args__ = (
        CheckConstraint(f'"group" IN {GROUPS!r}', name="group"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer, index=True)
    group: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormAssignment(Base):
    """A form a unit is expected to send, from a date (to a date)."""

    __tablename__ = "collection_form_assignments"
    __table_args__ = (CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer, index=True)
    form: Mapped[str] = mapped_column(String(32))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


BALANCE_KINDS = ("accepted_total", "health_record_basic", "health_record_hypertension", "health_record_diabetes")


class OpeningBalance(Base):
    """A cumulative figure carried over from an older platform, as of a date.

    `scope` is "platform", "org:<id>" (accepted totals) or "area:<code>" (health records).
    """

    __tablename__ = "collection_opening_balances"
    __table_args__ = (CheckConstraint(f"kind IN {BALANCE_KINDS!r}", name="kind"),)

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


PROGRAMS = ("basic", "hypertension", "diabetes")


class ManagedRecord(Base):
    """A distinct health record (basic) or management record (hypertension, diabetes) held for an area."""

    __tablename__ = "collection_managed_records"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program: Mapped[str] = mapped_column(String(16), primary_key=True)
    health_record_no: Mapped[str] = mapped_column(String(17), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    month: Mapped[int] = mapped_column(Integer)


class ManagedCount(Base):
    """Net new distinct records per sender, area, program and month: cumulative = opening + Σ months."""

    __tablename__ = "collection_managed_counts"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    program: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    added: Mapped[int] = mapped_column(BigInteger, default=0)


class FollowupFlag(Base):
    """A follow-up whose submitted classification disagrees with the one the platform computed."""

    __tablename__ = "collection_followup_flags"

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    submitted: Mapped[str] = mapped_column(String(2))
    computed: Mapped[str] = mapped_column(String(2))
    event_month: Mapped[int] = mapped_column(Integer)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CodeTableLoad(Base):
    """A loaded code table (ICD-10, ICD-9-CM-3): its generation, so validators know to reload."""

    __tablename__ = "collection_code_tables"

    table_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(255))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CodeEntry(Base):
    __tablename__ = "collection_code_entries"

    table_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
