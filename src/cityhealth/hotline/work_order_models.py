"""Work-order (工单) tables: the orders as received, their append-only events, the results owed to the 12345
systems (the outbox), and the holiday calendar's years set by an operator (the shipped years are a file)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

SOURCES = ("city_12345", "province_12345", "self_received")
# 咨询, 求助, 投诉, 紧急: the categories the deadline depends on.
WORK_ORDER_CATEGORIES = ("consultation", "help", "complaint", "urgent")
EVENT_KINDS = ("received", "dispatched", "reminded", "extension_requested", "extension_approved",
               "extension_refused", "replied", "closed", "result_returned", "callback", "reopened")
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")
RESULT_STATUSES = ("pending", "sent")
DAY_KINDS = ("holiday", "workday")  # a public holiday; an adjusted working weekend (调休上班)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class WorkOrder(Base):
    """An order as it was received; what became of it is in its events (work_order_events.py)."""

    __tablename__ = "hotline_work_orders"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("category", WORK_ORDER_CATEGORIES), name="category"),
        Index("ix_hotline_work_orders_organization_id", "organization_id", "id"),
        Index("ix_hotline_work_orders_received_at", "received_at"),
        # A complaint's title and content are the caller's own account: every request that reads them is
        # audited; its source, category and dates alone are not personal (the month's figures count them).
        {"info": {"personal_data": ("title", "content")}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "city_12345:<their id>", "province_12345:<their id>" or "self_received:<agent>:<request key>": a push or
    # a request received twice is one order.
    intake_key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    source_order_id: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the intake's content, to tell a retry from a change
    category: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_calls.id"))
    source_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the 12345 system took it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))


class WorkOrderEvent(Base):
    """One step of an order, never changed once written; the order's state and SLA are computed from these."""

    __tablename__ = "hotline_work_order_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        UniqueConstraint("work_order_id", "seq"),
        UniqueConstraint("work_order_id", "request_key"),
        Index("ix_hotline_work_order_events_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("hotline_work_orders.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, … within the order
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(96))
    request_key: Mapped[str | None] = mapped_column(String(64))  # the client's key: a retried step is one step
    note: Mapped[str | None] = mapped_column(Text)  # a reply, a reason
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # a due time, working days, a satisfaction


class WorkOrderDay(Base):
    """A day's work-order figures by the orders' source: kept as each counted event is appended (under the
    order's row lock), so the month's figures add days instead of replaying every order's events."""

    __tablename__ = "hotline_work_order_days"
    __table_args__ = (CheckConstraint(_in("source", SOURCES), name="source"),)

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)  # of the event (Asia/Shanghai)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)  # every close, a reopened order's again
    closed_on_time: Mapped[int] = mapped_column(Integer)  # by the deadline the order had when it closed
    satisfied: Mapped[int] = mapped_column(Integer)
    basically_satisfied: Mapped[int] = mapped_column(Integer)
    dissatisfied: Mapped[int] = mapped_column(Integer)


class WorkOrderResult(Base):
    """A closed order's result owed to the 12345 system it came from: sent by a task, retried until sent."""

    __tablename__ = "hotline_work_order_results"
    __table_args__ = (
        CheckConstraint(_in("status", RESULT_STATUSES), name="status"),
        UniqueConstraint("work_order_id", "close_seq"),
        Index("ix_hotline_work_order_results_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("hotline_work_orders.id"))
    close_seq: Mapped[int] = mapped_column(Integer)  # the close event it reports: a reopened order closes again
    reference: Mapped[str] = mapped_column(String(160), unique=True)  # the receiver de-duplicates on it
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HolidayYear(Base):
    """A year whose holidays an operator set; it replaces the shipped file's year."""

    __tablename__ = "hotline_holiday_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str | None] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(96))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HolidayDay(Base):
    __tablename__ = "hotline_holiday_days"
    __table_args__ = (CheckConstraint(_in("kind", DAY_KINDS), name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("hotline_holiday_years.year"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(32))
