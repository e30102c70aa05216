"""Request and response shapes of the collection API."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_code: str = Field(max_length=32)
    group: Literal["outpatient", "inpatient"]
    start_date: date
    end_date: date | None = None


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    group: str
    start_date: date
    end_date: date | None


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_code: str = Field(max_length=32)
    forms: list[str] = Field(min_length=1, max_length=20)
    start_date: date
    end_date: date | None = None


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    form: str
    start_date: date
    end_date: date | None


class OpeningBalanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["accepted_total", "health_record_basic", "health_record_hypertension", "health_record_diabetes"]
    count: int = Field(ge=0)
    as_of: date
    organization_code: str | None = Field(default=None, max_length=32)
    area_code: str | None = Field(default=None, max_length=12)


class OpeningBalanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    scope: str
    as_of: date
    count: int


class BatchRead(BaseModel):
    form: str
    dry_run: bool
    received_at: str
    counts: dict[str, int]
    rejections_by_rule: dict[str, int]
    rejections_by_field: dict[str, int]
    records: list[dict[str, Any]]


class JobRead(BaseModel):
    id: int
    status: str
    format: str
    form: str | None
    encoding: str
    compressed: bool
    dry_run: bool
    bytes_received: int
    rows_processed: int
    counts: dict[str, int]
    rejections_by_rule: dict[str, int]
    rejections_by_field: dict[str, int]
    error: str | None
    received_at: str
    started_at: str | None
    finished_at: str | None
    rejections_url: str
