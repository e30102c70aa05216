"""Family doctor request and response shapes."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cityhealth.db.types import RowId
from cityhealth.registry.schemas import ResidentRead

MemberRole = Literal["doctor", "nurse", "public_health"]


class _Input(BaseModel):
    # Unknown fields are refused: a client must not set server-owned fields (status, area, household …).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TeamMemberIn(_Input):
    practitioner_id: RowId
    role: MemberRole


class TeamPut(_Input):
    name: str = Field(min_length=1, max_length=64)
    members: list[TeamMemberIn] = Field(min_length=1, max_length=30)


class TeamMemberRead(_Output):
    practitioner_id: int
    role: str


class TeamRead(_Output):
    id: int
    organization_id: int
    code: str
    name: str
    is_active: bool
    members: list[TeamMemberRead]


class PackagePut(_Input):
    name: str = Field(min_length=1, max_length=64)
    services: str = Field(min_length=1, max_length=1000)
    annual_fee_fen: int = Field(ge=0, le=10_000_000)
    is_active: bool = True


class PackageRead(_Output):
    id: int
    code: str
    name: str
    services: str
    annual_fee_fen: int
    is_active: bool


class ContractSign(_Input):
    """One resident, or the members of a household signed together with one team."""

    resident_ids: list[RowId] = Field(min_length=1, max_length=12)
    team_id: RowId
    package_id: RowId
    starts_on: date | None = None  # today (Asia/Shanghai) when not given
    # Switch (转签): end each resident's current contract the day the new one starts, instead of refusing.
    switch: bool = False


class ContractRenew(_Input):
    package_id: RowId | None = None  # the same package when not given


class ContractCancel(_Input):
    reason: str = Field(min_length=1, max_length=200)
    ends_on: date | None = None  # today (Asia/Shanghai) when not given; the contract covers the days before it


class ContractRead(_Output):
    id: int
    resident_id: int
    team_id: int
    package_id: int
    household_key: str | None
    area_code: str
    starts_on: date
    ends_on: date
    ended_on: date | None
    status: str
    end_reason: str | None
    previous_id: int | None


class PanelEntry(BaseModel):
    contract: ContractRead
    resident: ResidentRead


class PopulationPut(_Input):
    population: int = Field(gt=0, le=2_000_000_000)
    source: str = Field(min_length=1, max_length=255)


class PopulationRead(_Output):
    area_code: str
    year: int
    population: int
    source: str


class ContractRateRead(BaseModel):
    """Signed residents ÷ resident population of an area on a day; `rate_percent` is None when the area has no
    population figure for that year or an earlier one (not measured, which is not 0)."""

    area_code: str
    on: date
    signed_residents: int
    population: int | None
    population_year: int | None
    rate_percent: str | None
