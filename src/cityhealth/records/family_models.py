"""Family doctor tables: teams at community health centres, service packages, contracts, area populations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

MEMBER_ROLES = ("doctor", "nurse", "public_health")
# A contract's state: `active` is the one current contract of a resident (at most one, an index says so);
# the others are history, each saying how it ended.
CONTRACT_STATUSES = ("active", "renewed", "switched", "cancelled", "expired")


class FamilyTeam(Base):
    """A family doctor team (家庭医生团队) of one community health centre."""

    __tablename__ = "family_teams"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # the centre's own code for the team
    name: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FamilyTeamMember(Base):
    """A practitioner of the registry in a team, in one role."""

    __tablename__ = "family_team_members"
    __table_args__ = (CheckConstraint(f"role IN {MEMBER_ROLES!r}", name="role"),)

    team_id: Mapped[int] = mapped_column(ForeignKey("family_teams.id"), primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioners.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))


class FamilyServicePackage(Base):
    """A service package (服务包) a contract is signed for: basic, or one for a group such as the elderly."""

    __tablename__ = "family_service_packages"
    __table_args__ = (CheckConstraint("annual_fee_fen >= 0", name="annual_fee_fen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    services: Mapped[str] = mapped_column(String(1000))  # what the package gives, as the resident reads it
    annual_fee_fen: Mapped[int] = mapped_column(Integer)  # what the resident pays a year, in fen
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FamilyContract(Base):
    """A resident's contract (签约) with a team for one year: [starts_on, ends_on), ended early on ended_on."""

    __tablename__ = "family_contracts"
    __table_args__ = (
        CheckConstraint(f"status IN {CONTRACT_STATUSES!r}", name="status"),
        CheckConstraint("ends_on > starts_on", name="period"),
        CheckConstraint("ended_on IS NULL OR ended_on >= starts_on", name="ended_on"),
        Index("ix_family_contracts_team_status", "team_id", "status"),
        Index("ix_family_contracts_area_period", "area_code", "starts_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("family_teams.id"))
    package_id: Mapped[int] = mapped_column(ForeignKey("family_service_packages.id"))
    # Members signed together as one household share the key (the first member's contract id).
    household_key: Mapped[str | None] = mapped_column(String(32), index=True)
    # The area the contract counts in for the contract rate: the resident's address area when signed, else the
    # centre's area.
    area_code: Mapped[str] = mapped_column(String(12))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # exclusive: a year after starts_on
    ended_on: Mapped[date | None] = mapped_column(Date)  # exclusive: set when switched or cancelled early
    status: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("family_contracts.id"))  # renewed or switched from
    signed_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The database, not a pre-check alone, keeps a resident to one current contract.
Index("ux_family_contracts_active_resident", FamilyContract.resident_id, unique=True,
      postgresql_where=FamilyContract.status == "active", sqlite_where=FamilyContract.status == "active")


class AreaPopulation(Base):
    """The resident population (常住人口) of an area in a year: the contract rate's denominator."""

    __tablename__ = "family_area_populations"
    __table_args__ = (CheckConstraint("population > 0", name="population"),)

    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    population: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
