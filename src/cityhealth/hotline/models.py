"""Hotline call tables: the city lines, each call (a projection of its events), the events as reported,
agents' annotations and reclassifications, and crisis-intervention follow-ups."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

# The bulletin's six call categories (咨询, 医疗服务投诉, 电话预约, 人工服务, 心理危机干预, 自助语音问答).
CATEGORIES = ("consultation", "complaint", "phone_booking", "manual_service", "crisis_intervention",
              "self_service_voice")
CRISIS = "crisis_intervention"
OUTCOMES = ("resolved", "transferred", "call_back", "abandoned", "self_served")
EVENT_KINDS = ("start", "ivr", "queue", "answer", "end")
# What the events seen so far say of the call; "partial" is a call whose start has not been reported yet.
CALL_STATES = ("partial", "started", "in_ivr", "queued", "answered", "ended")
CHANGE_KINDS = ("annotation", "reclassification")
FOLLOW_UP_STATUSES = ("open", "done", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class CityLine(Base):
    """A city's 12320 line in the province: the telephony system names it in each call's start event."""

    __tablename__ = "hotline_city_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[str] = mapped_column(String(32), unique=True)
    city_code: Mapped[str] = mapped_column(String(6))
    city_name: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Call(Base):
    """One call, as its events so far describe it; rebuilt from them whenever one arrives."""

    __tablename__ = "hotline_calls"
    __table_args__ = (
        CheckConstraint(_in("state", CALL_STATES), name="state"),
        CheckConstraint(f"category IS NULL OR {_in('category', CATEGORIES)}", name="category"),
        CheckConstraint(f"reported_category IS NULL OR {_in('reported_category', CATEGORIES)}",
                        name="reported_category"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name="outcome"),
        Index("ix_hotline_calls_business_date_city_code", "business_date", "city_code"),
        Index("ix_hotline_calls_agent_started_at", "agent", "started_at"),
        Index("ix_hotline_calls_caller_hash", "caller_hash"),
        # The caller's number and the agents' notes are personal; a call's city, category and times alone
        # are not (the month's figures group them without reading anyone's data).
        {"info": {"personal_data": ("caller_hash", "caller_cipher", "note")}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telephony_call_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    city_line_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_city_lines.id"))
    city_code: Mapped[str | None] = mapped_column(String(6))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The start's business date and hour (Asia/Shanghai), kept so the month's figures group without time zones.
    business_date: Mapped[date | None] = mapped_column(Date)
    start_hour: Mapped[int | None] = mapped_column(SmallInteger)
    ivr_path: Mapped[str | None] = mapped_column(String(400))
    queue: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent: Mapped[str | None] = mapped_column(String(96))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    caller_hash: Mapped[str | None] = mapped_column(String(64))
    caller_cipher: Mapped[str | None] = mapped_column(Text)
    reported_category: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32))  # the telephony's, unless an agent reclassified
    classified_by: Mapped[str | None] = mapped_column(String(96))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)  # the latest annotation; all are in hotline_call_changes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallEvent(Base):
    """An event as the telephony system reported it; the same identity twice is one event."""

    __tablename__ = "hotline_call_events"
    __table_args__ = (CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),)

    # The telephony's identity is the key: one index to keep up per event, the hot path's largest insert.
    call_id: Mapped[int] = mapped_column(ForeignKey("hotline_calls.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # start: the city line; ivr: the IVR node; queue: the queue; answer: the agent; end: the outcome.
    value: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the whole event (the caller only as its HMAC)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallTally(Base):
    """How many calls have one start day and hour, city, category and outcome: the month's figures read these.

    Kept in the transaction of each report and reclassification that moves a call from one key to another
    (the call's row is locked then), so they always equal a count of the calls; `""` is "not known yet" (a key
    column is never NULL, so that a key is one row). A call counts from its start, like the figures.
    """

    __tablename__ = "hotline_call_tallies"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    start_hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class CallChange(Base):
    """An agent's annotation or reclassification of a call, kept as history."""

    __tablename__ = "hotline_call_changes"
    __table_args__ = (
        UniqueConstraint("call_id", "request_key"),
        CheckConstraint(_in("kind", CHANGE_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hotline_calls.id"))
    request_key: Mapped[str] = mapped_column(String(64))  # the client's key: a retried change is one change
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    category_from: Mapped[str | None] = mapped_column(String(32))
    category_to: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrisisFollowUp(Base):
    """The follow-up a crisis-intervention call opens, due by a strict deadline; overdue, it escalates."""

    __tablename__ = "hotline_crisis_follow_ups"
    __table_args__ = (
        CheckConstraint(_in("status", FOLLOW_UP_STATUSES), name="status"),
        Index("ix_hotline_crisis_follow_ups_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hotline_calls.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(96))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- The agent desk ---------------------------------------------------------------------------------------

DESK_ACTIONS = ("book", "cancel", "reschedule")
CALLBACK_OUTCOMES = ("reached", "not_reached")


class CallCaller(Base):
    """The master-index resident an agent identified as the caller of an open call (one per call)."""

    __tablename__ = "hotline_call_callers"

    call_id: Mapped[int] = mapped_column(ForeignKey("hotline_calls.id"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    identified_by: Mapped[str] = mapped_column(String(96))
    method: Mapped[str] = mapped_column(String(24))  # id_number, name_birth_date or phone
    identified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallBooking(Base):
    """A booking an agent made, cancelled or moved for the caller of a call: phone bookings reconcile with
    phone_booking calls through these rows."""

    __tablename__ = "hotline_call_bookings"
    __table_args__ = (
        UniqueConstraint("call_id", "booking_id", "action"),
        CheckConstraint(_in("action", DESK_ACTIONS), name="action"),
        Index("ix_hotline_call_bookings_booking_id", "booking_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hotline_calls.id"))
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    action: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallbackAttempt(Base):
    """An agent's call back to a resident on the suspended-clinic list: reached or not, with a note."""

    __tablename__ = "hotline_callback_attempts"
    __table_args__ = (
        UniqueConstraint("callback_id", "request_key"),
        CheckConstraint(_in("outcome", CALLBACK_OUTCOMES), name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("booking_callbacks.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(64))  # a retried result is one attempt
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
