"""Chronic disease management request and response shapes."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cityhealth.db.types import Int64, RowId
from cityhealth.registry.schemas import ResidentRead

Program = Literal["hypertension", "diabetes"]
CallOutcome = Literal["agreed_to_visit", "remind_later", "no_answer", "removed"]
RemovalReason = Literal["visited_elsewhere", "moved_away", "died", "refused", "wrong_number", "other"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RegistrationIn(_Input):
    """A centre enters a resident on a register (a diagnosis made or confirmed at the centre)."""

    resident_id: RowId
    program: Program
    registered_on: date | None = None  # today when not given
    diagnosis_code: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


class Readings(_Input):
    # The ranges are checked by the service, which names the physiological rule (chronic_rules.py); these bounds
    # only keep the numbers inside their columns.
    visit_date: date
    sbp: Int64
    dbp: Int64
    fbg_mmol_l: float | None = Field(default=None, allow_inf_nan=False)
    adverse_reaction: bool = False
    new_complication: bool = False


class FollowupIn(Readings):
    """A follow-up recorded at the centre; `key` makes a retry the same follow-up."""

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class FollowupUpload(Readings):
    """A public-health follow-up as a district platform uploads it: the resident named by ID number."""

    record_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    program: Program
    id_number: str = Field(min_length=15, max_length=18)
    organization_code: str = Field(min_length=1, max_length=32)  # the centre that made the visit


class RegistrationRead(_Output):
    id: int
    resident_id: int
    program: str
    registered_on: date
    source: str
    source_ref: str | None
    organization_id: int
    area_code: str
    next_due_on: date
    removed_on: date | None
    removal_reason: str | None


class FollowupRead(_Output):
    id: int
    registration_id: int
    visit_date: date
    sbp: int
    dbp: int
    fbg_mmol_l: float | None
    adverse_reaction: bool
    new_complication: bool
    classification: str
    next_step: str
    due_on: date


class OverdueEntry(BaseModel):
    registration: RegistrationRead
    resident: ResidentRead
    status: Literal["due", "overdue"]
    days_overdue: int
    last_call_outcome: str | None


class CallIn(_Input):
    outcome: CallOutcome
    removal_reason: RemovalReason | None = None


class CallRead(_Output):
    id: int
    registration_id: int
    due_on: date
    outcome: str
    removal_reason: str | None


class IndicatorRow(BaseModel):
    """One area's or team's month; a rate is None when its denominator is 0 (not measured, not 0 %)."""

    month: str
    program: str
    area_code: str | None
    team_id: int | None
    managed: int  # 年内已管理的患者人数: on the register at month end
    standard_managed: int  # of them, four or more follow-ups in the 12 months to month end
    standard_rate_percent: str | None  # 规范管理率
    controlled: int  # of them, the latest follow-up in those 12 months at target
    control_rate_percent: str | None  # 控制率
    hearts_denominator: int  # registered before the last 3 months, seen in the last 12
    hearts_controlled: int  # of them, the latest reading in the last 3 months below 140/90
    hearts_rate_percent: str | None
