"""Records tables: patient links to the master index and their history, the review queue, the timeline index of
linked records, the residents' consents and the access log of every opening.

The timeline index is filled as records are linked (records/linkage.py) and keyed like the collection's records,
so a re-run over the same records changes nothing; a resident's shared record reads it by resident and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

_BIGINT = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY

# How a patient identity stands: linked to a resident, waiting for an operator, or kept unlinked with a reason.
LINK_STATUSES = ("linked", "review", "unlinked")
# Who made the link: the ID number's keyed hash, the score, or an operator (whom automation never overrides).
LINK_METHODS = ("id_number", "score", "operator")
REVIEW_STATUSES = ("open", "accepted", "rejected", "superseded")
LINK_EVENT_KINDS = ("linked", "queued", "unlinked", "merged", "unmerged", "rejected")
ACCESS_KINDS = ("booking", "open_encounter", "consent", "family_doctor", "break_glass")


class PatientLink(Base):
    """One uploading unit's patient identity (its patient id, or "HR:" and a health record number for the
    public-health forms) and the resident of the master index it is linked to."""

    __tablename__ = "records_patient_links"
    __table_args__ = (
        CheckConstraint(f"status IN {LINK_STATUSES!r}", name="status"),
        CheckConstraint(f"method IS NULL OR method IN {LINK_METHODS!r}", name="method"),
        CheckConstraint("(status = 'linked') = (resident_id IS NOT NULL)", name="linked_resident"),
        Index("ix_records_patient_links_resident_id", "resident_id"),
        Index("ix_records_patient_links_status", "status"),
    )

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    resident_id: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(48))  # why it is not linked: a stable rule code
    source_form: Mapped[str] = mapped_column(String(32))
    source_record_id: Mapped[str] = mapped_column(String(64))
    source_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkReview(Base):
    """A candidate link scored inside the review band: an operator accepts or rejects it."""

    __tablename__ = "records_link_reviews"
    __table_args__ = (
        CheckConstraint(f"status IN {REVIEW_STATUSES!r}", name="status"),
        # One candidate once per version of the identity's record: a re-read page queues nothing twice.
        Index("uq_records_link_reviews_candidate", "organization_id", "patient_key", "resident_id", "source_version",
              unique=True),
        Index("ix_records_link_reviews_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    patient_key: Mapped[str] = mapped_column(String(80))
    resident_id: Mapped[int] = mapped_column(Integer)
    source_version: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    agreements: Mapped[dict[str, Any]] = mapped_column(JSON)  # per field: agree / disagree / missing
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(96))


class LinkEvent(Base):
    """The history of a patient identity's link: every link, queueing, merge and unmerge, never rewritten."""

    __tablename__ = "records_link_events"
    __table_args__ = (
        CheckConstraint(f"kind IN {LINK_EVENT_KINDS!r}", name="kind"),
        Index("ix_records_link_events_identity", "organization_id", "patient_key", "id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    patient_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    from_resident_id: Mapped[int | None] = mapped_column(Integer)
    to_resident_id: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(96))
    note: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimelineEntry(Base):
    """One stored record as the shared record shows it: its category, when, where, and the non-personal fields
    worth showing; its patient identity (found through the visit or admission it belongs to) and resident."""

    __tablename__ = "records_timeline"
    __table_args__ = (
        Index("ix_records_timeline_resident_event", "resident_id", "event_time"),
        Index("ix_records_timeline_identity", "organization_id", "patient_key"),
        Index("ix_records_timeline_encounter", "organization_id", "encounter_kind", "encounter_no"),
    )

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(24))
    encounter_kind: Mapped[str | None] = mapped_column(String(16))  # visit | admission | health_record
    encounter_no: Mapped[str | None] = mapped_column(String(64))
    owns_encounter: Mapped[bool] = mapped_column(Boolean)  # the visit / admission / record itself
    patient_key: Mapped[str | None] = mapped_column(String(80))
    resident_id: Mapped[int | None] = mapped_column(Integer)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class LinkCursor(Base):
    """How far the linker has read the stored records: (received_at, organization, form, record id)."""

    __tablename__ = "records_link_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    organization_id: Mapped[int] = mapped_column(Integer)
    form: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """A resident's own time-limited permission for one organization's clinicians to open the shared record."""

    __tablename__ = "records_consents"
    __table_args__ = (
        CheckConstraint("expires_at > granted_at", name="period"),
        Index("ix_records_consents_resident_organization", "resident_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer)
    organization_id: Mapped[int] = mapped_column(Integer)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(96))


class AccessLogEntry(Base):
    """One opening of a resident's shared record (调阅): who, for which organization, on what checked reason.
    Break-glass openings wait for a reviewer."""

    __tablename__ = "records_access_log"
    __table_args__ = (
        CheckConstraint(f"reason_kind IN {ACCESS_KINDS!r}", name="reason_kind"),
        Index("ix_records_access_log_resident_id", "resident_id", "id"),
        Index("ix_records_access_log_review", "reason_kind", "reviewed_at"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer)
    accessor: Mapped[str] = mapped_column(String(96))  # the principal's subject
    organization_id: Mapped[int] = mapped_column(Integer)
    reason_kind: Mapped[str] = mapped_column(String(16))
    reason_ref: Mapped[str] = mapped_column(String(255))  # the booking, encounter or consent; break-glass text
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(96))
    review_note: Mapped[str | None] = mapped_column(Text)
