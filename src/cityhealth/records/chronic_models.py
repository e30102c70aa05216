"""Chronic disease management tables: the hypertension and diabetes registers, follow-ups, the overdue list's
calls, and the patient-month table the monthly indicators are counted from."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

PROGRAMS = ("hypertension", "diabetes")
SOURCES = ("diagnosis", "followup_upload", "clinic")
NEXT_STEPS = ("routine", "recheck", "refer")
CALL_OUTCOMES = ("agreed_to_visit", "remind_later", "no_answer", "removed")
REMOVAL_REASONS = ("visited_elsewhere", "moved_away", "died", "refused", "wrong_number", "other")


class ChronicRegistration(Base):
    """A resident on one programme's register (高血压/2型糖尿病患者管理): once per resident and programme."""

    __tablename__ = "chronic_registrations"
    __table_args__ = (
        CheckConstraint(f"program IN {PROGRAMS!r}", name="program"),
        CheckConstraint(f"source IN {SOURCES!r}", name="source"),
        CheckConstraint(f"removal_reason IS NULL OR removal_reason IN {REMOVAL_REASONS!r}", name="removal_reason"),
        Index("ux_chronic_registrations_resident_program", "resident_id", "program", unique=True),
        Index("ix_chronic_registrations_organization_due", "organization_id", "next_due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    program: Mapped[str] = mapped_column(String(16))
    registered_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(96))  # the diagnosis code or the upload's record id
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))  # the managing centre
    area_code: Mapped[str] = mapped_column(String(12))  # the resident's address area, else the centre's
    next_due_on: Mapped[date] = mapped_column(Date)  # when the next follow-up is due
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChronicFollowup(Base):
    """One follow-up visit (随访) with its readings and the classification the platform worked out."""

    __tablename__ = "chronic_followups"
    __table_args__ = (
        CheckConstraint("classification IN ('1', '2', '3', '4')", name="classification"),
        CheckConstraint(f"next_step IN {NEXT_STEPS!r}", name="next_step"),
        CheckConstraint("sbp > dbp", name="pressures"),
        Index("ix_chronic_followups_registration_visit", "registration_id", "visit_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("chronic_registrations.id"))
    # What makes a retry the same follow-up: the uploader's organization and record id, or the caller's key.
    source_key: Mapped[str] = mapped_column(String(128), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    sbp: Mapped[int] = mapped_column(SmallInteger)
    dbp: Mapped[int] = mapped_column(SmallInteger)
    fbg_mmol_l: Mapped[float | None] = mapped_column(Numeric(4, 1, asdecimal=False))
    adverse_reaction: Mapped[bool] = mapped_column(Boolean)
    new_complication: Mapped[bool] = mapped_column(Boolean)
    classification: Mapped[str] = mapped_column(String(1))  # 1 控制满意 2 控制不满意 3 不良反应 4 并发症
    next_step: Mapped[str] = mapped_column(String(8))
    due_on: Mapped[date] = mapped_column(Date)  # the next follow-up this one asks for
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChronicCall(Base):
    """A call made from the overdue list about one due date, and its outcome."""

    __tablename__ = "chronic_calls"
    __table_args__ = (
        CheckConstraint(f"outcome IN {CALL_OUTCOMES!r}", name="outcome"),
        CheckConstraint(f"removal_reason IS NULL OR removal_reason IN {REMOVAL_REASONS!r}", name="removal_reason"),
        CheckConstraint("(outcome = 'removed') = (removal_reason IS NOT NULL)", name="removed_with_reason"),
        Index("ix_chronic_calls_registration_due", "registration_id", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("chronic_registrations.id"))
    due_on: Mapped[date] = mapped_column(Date)  # the due date that made the patient overdue
    outcome: Mapped[str] = mapped_column(String(16))
    removal_reason: Mapped[str | None] = mapped_column(String(24))
    called_by: Mapped[str] = mapped_column(String(96))
    called_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChronicPatientMonth(Base):
    """One registered patient in one month, as the indicators count them (docs/decisions/records-chronic.md)."""

    __tablename__ = "chronic_patient_months"
    __table_args__ = (Index("ix_chronic_patient_months_month_program_area", "month", "program", "area_code"),)

    month: Mapped[int] = mapped_column(Integer, primary_key=True)  # yyyymm
    registration_id: Mapped[int] = mapped_column(ForeignKey("chronic_registrations.id"), primary_key=True)
    program: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(12))
    organization_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)  # the team of the resident's contract at month end
    followups_12m: Mapped[int] = mapped_column(SmallInteger)  # follow-ups in the 12 months ending with the month
    is_standard: Mapped[bool] = mapped_column(Boolean)  # 规范管理: four or more of them
    is_controlled: Mapped[bool] = mapped_column(Boolean)  # the latest of them met the programme's target
    hearts_eligible: Mapped[bool] = mapped_column(Boolean)  # in the HEARTS denominator
    hearts_controlled: Mapped[bool] = mapped_column(Boolean)  # in the HEARTS numerator
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
