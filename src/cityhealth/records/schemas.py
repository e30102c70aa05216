"""Request and response shapes of the records room."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cityhealth.db.types import Int64, RowId
from cityhealth.registry.schemas import ResidentRead


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkRead(BaseModel):
    organization_id: int
    patient_key: str
    status: str
    resident_id: int | None
    method: str | None
    score: float | None
    reason: str | None
    source_form: str
    source_record_id: str
    updated_at: datetime


class LinkEventRead(BaseModel):
    id: int
    kind: str
    from_resident_id: int | None
    to_resident_id: int | None
    method: str | None
    score: float | None
    actor: str
    note: str | None
    occurred_at: datetime


class LinkHistory(BaseModel):
    link: LinkRead
    events: list[LinkEventRead]


class ReviewRead(BaseModel):
    id: int
    organization_id: int
    patient_key: str
    resident_id: int
    score: float
    agreements: dict[str, str]
    status: str
    created_at: datetime


class ReviewDecision(_In):
    note: str | None = Field(default=None, max_length=500)


class MergeIn(_In):
    """Link an uploading unit's patient identity to a resident by hand."""

    organization_id: RowId
    patient_key: str = Field(min_length=1, max_length=80)
    resident_id: RowId
    note: str = Field(min_length=1, max_length=500)


class UnmergeIn(_In):
    """Take a patient identity off its resident, onto another (to_resident_id) or onto no one."""

    organization_id: RowId
    patient_key: str = Field(min_length=1, max_length=80)
    to_resident_id: RowId | None = None
    note: str = Field(min_length=1, max_length=500)


class TimelineItem(BaseModel):
    organization_id: int
    organization_name: str | None
    form: str
    record_id: str
    category: str
    encounter_kind: str | None
    encounter_no: str | None
    event_time: datetime
    summary: dict[str, Any]


class HealthFlags(BaseModel):
    hypertension: bool
    diabetes: bool
    blood_group: str | None  # ABO and Rh of the latest discharge that gives them
    last_blood_pressure: str | None  # "sbp/dbp" of the latest follow-up that gives one


class SharedRecord(BaseModel):
    """The first page, a page of the encounter timeline (newest first), and the public-health record."""

    resident: ResidentRead
    flags: HealthFlags
    linked_identities: int
    timeline: list[TimelineItem]
    next_before: str | None  # pass as `before` for the next page
    public_health: list[TimelineItem]
    access_id: int  # the access-log entry this opening made


class BreakGlassIn(_In):
    justification: str = Field(min_length=10, max_length=500)


class ConsentIn(_In):
    organization_id: RowId
    days: int = Field(ge=1, le=90)


class ConsentRead(BaseModel):
    id: int
    organization_id: int
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class AccessRead(BaseModel):
    id: int
    resident_id: int
    accessor: str
    organization_id: int
    organization_name: str | None
    reason_kind: str
    reason_ref: str
    opened_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None


class BreakGlassReview(_In):
    note: str = Field(min_length=1, max_length=500)


class LinkPass(BaseModel):
    read: Int64
    indexed: Int64
    linked: Int64
    queued: Int64
    unlinked: Int64
