"""Remote diagnosis tables: the five networks and their turnaround targets, members and designations, cases
with their append-only events, reports, consultations, and the month's volumes kept as cases are written."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

NETWORKS = ("teleconsultation", "ecg", "lab", "imaging", "pathology")
MEMBER_KINDS = ("tertiary", "secondary_or_above", "community_health_centre", "metro_city", "aid", "other")
MEMBER_ROLES = ("requester", "reading_centre", "both")
CASE_TYPES = ("ecg", "imaging_study", "lab_report", "lab_specimen", "pathology_case", "consultation_request")
# FHIR Task.priority.
PRIORITIES = ("routine", "urgent", "asap", "stat")
# FHIR Task.status, the subset a case passes through.
CASE_STATUSES = ("requested", "received", "accepted", "rejected", "in-progress", "completed", "cancelled")
EVENT_KINDS = (
    "submitted",
    "routed",
    "received",
    "accepted",
    "rejected",
    "claimed",
    "released",
    "drafted",
    "signed",
    "cancelled",
    "unroutable",
)
CONSULTATION_STATUSES = ("scheduled", "completed", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Network(Base):
    """One of the city's five remote diagnosis networks (reference data, written by the migration)."""

    __tablename__ = "telemed_networks"
    __table_args__ = (CheckConstraint(_in("code", NETWORKS), name="code"),)

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    case_types: Mapped[list[str]] = mapped_column(JSON)  # what its members may submit


class TurnaroundTarget(Base):
    """How long a network's reading centres have for a case of a priority, from submission to signed report."""

    __tablename__ = "telemed_turnaround_targets"
    __table_args__ = (
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint("minutes > 0", name="minutes_positive"),
    )

    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"), primary_key=True)
    priority: Mapped[str] = mapped_column(String(8), primary_key=True)
    minutes: Mapped[int] = mapped_column(Integer)


class Member(Base):
    """An organization's membership of a network, from joining to leaving; it rejoins as a new row."""

    __tablename__ = "telemed_members"
    __table_args__ = (
        CheckConstraint(_in("kind", MEMBER_KINDS), name="kind"),
        CheckConstraint(_in("role", MEMBER_ROLES), name="role"),
        CheckConstraint("left_on IS NULL OR left_on >= joined_on", name="dates"),
        # The natural key: joining the same network on the same day twice is one membership.
        UniqueConstraint("network_code", "organization_id", "joined_on"),
        Index("ix_telemed_members_network_code_joined_on", "network_code", "joined_on"),
        Index("ix_telemed_members_organization_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    # Networks cross city borders: the member's city (a city-level area) and, inside it, the district or
    # reporting unit whose coverage it counts for (the organization's area unless given).
    city_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"))
    kind: Mapped[str] = mapped_column(String(24))
    role: Mapped[str] = mapped_column(String(16))
    # What a reading centre reads (case types, modalities); None: everything its network carries.
    reads_case_types: Mapped[list[str] | None] = mapped_column(JSON)
    reads_modalities: Mapped[list[str] | None] = mapped_column(JSON)
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)  # the first day it is no longer a member
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))


class Designation(Base):
    """A requester's designated reading centre, tried before any other (lowest rank first)."""

    __tablename__ = "telemed_designations"

    requester_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"), primary_key=True)
    centre_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    """A case a member submitted; its status and holder are kept here, every step of it in its events."""

    __tablename__ = "telemed_cases"
    __table_args__ = (
        CheckConstraint(_in("case_type", CASE_TYPES), name="case_type"),
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        # The requester's own id for the case: a retried submission is one case.
        UniqueConstraint("requester_organization_id", "network_code", "external_id"),
        Index("ix_telemed_cases_centre_status", "centre_organization_id", "status", "due_at"),
        Index("ix_telemed_cases_requester", "requester_organization_id", "id"),
        Index("ix_telemed_cases_network_status_due", "network_code", "status", "due_at"),
        Index("ix_telemed_cases_centre_member_status", "centre_member_id", "status"),
        # The clinical question is the patient's own story: every request that reads it is audited.
        {"info": {"personal_data": ("clinical_question",)}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"))
    external_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the submission, to tell a retry from a change
    case_type: Mapped[str] = mapped_column(String(24))
    modality: Mapped[str | None] = mapped_column(String(16))  # DICOM modality (CT, MR …), ECG lead set …
    priority: Mapped[str] = mapped_column(String(8))
    requester_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))
    requester_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    centre_member_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_members.id"))
    centre_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    clinical_question: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    business_status: Mapped[str] = mapped_column(String(24))
    holder: Mapped[str | None] = mapped_column(String(96))  # the doctor who claimed it (FHIR Task.owner)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str] = mapped_column(String(96))


class CaseEvent(Base):
    """One step of a case, never changed once written: who did what, when, for which centre."""

    __tablename__ = "telemed_case_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        UniqueConstraint("case_id", "seq"),
        UniqueConstraint("case_id", "request_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("telemed_cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(96))
    request_key: Mapped[str | None] = mapped_column(String(64))  # a retried step is one step
    centre_member_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_members.id"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Report(Base):
    """A reading centre's report on a case: a draft its doctor edits, then signed and returned."""

    __tablename__ = "telemed_reports"
    __table_args__ = ({"info": {"personal_data": ("findings", "conclusion")}},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("telemed_cases.id"), unique=True)
    centre_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))
    author: Mapped[str] = mapped_column(String(96))
    findings: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by: Mapped[str | None] = mapped_column(String(96))


class Consultation(Base):
    """A consultation scheduled between members, producing an opinion."""

    __tablename__ = "telemed_consultations"
    __table_args__ = (
        CheckConstraint(_in("status", CONSULTATION_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="times"),
        UniqueConstraint("requester_organization_id", "request_key"),
        Index("ix_telemed_consultations_network_starts_at", "network_code", "starts_at"),
        {"info": {"personal_data": ("opinion",)}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_cases.id"))
    requester_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))
    requester_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    request_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    opinion: Mapped[str | None] = mapped_column(Text)
    opinion_by: Mapped[str | None] = mapped_column(String(96))
    opinion_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))


class ConsultationParticipant(Base):
    """A member taking part in a consultation, with the doctor it sends."""

    __tablename__ = "telemed_consultation_participants"

    consultation_id: Mapped[int] = mapped_column(ForeignKey("telemed_consultations.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"), primary_key=True)
    doctor_name: Mapped[str | None] = mapped_column(String(64))


class MonthVolume(Base):
    """A member organization's month in a network, kept as cases, reports and consultations are written: the
    bulletin's volumes and top uploaders add these rows instead of counting every case."""

    __tablename__ = "telemed_month_volumes"

    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day (Asia/Shanghai)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    cases_submitted: Mapped[int] = mapped_column(Integer)
    reports_signed: Mapped[int] = mapped_column(Integer)  # by the organization as a reading centre
    consultations: Mapped[int] = mapped_column(Integer)  # requested by the organization
    # The bulletin's other volumes (docs/decisions/telemed-statistics.md says what each counts): lab reports
    # accepted over MLLP and imaging reports signed final, credited to the sending organization; specimens
    # shipped; images of the studies first recorded in the month.
    reports_uploaded: Mapped[int] = mapped_column(Integer, server_default="0")
    specimens_routed: Mapped[int] = mapped_column(Integer, server_default="0")
    images: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), server_default="0")
