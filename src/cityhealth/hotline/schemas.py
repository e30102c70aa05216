"""Request and response shapes of the hotline's call API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Category = Literal["consultation", "complaint", "phone_booking", "manual_service", "crisis_intervention",
                   "self_service_voice"]
Outcome = Literal["resolved", "transferred", "call_back", "abandoned", "self_served"]
Identity = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9._:\-]+$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
MAX_EVENTS_PER_REPORT = 2_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallEventIn(_Strict):
    """One event of one call. Each kind carries its own fields; the others must be absent."""

    call_id: Identity = Field(description="The telephony system's id of the call")
    event_id: Identity = Field(description="The event's identity within the call: the same id twice is one event")
    kind: Literal["start", "ivr", "queue", "answer", "end"]
    at: AwareDatetime
    city_line: Label | None = Field(default=None, description="start: the city line dialled")
    caller_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=24)] | None = Field(
        default=None, description="start: the caller's number (absent when withheld)")
    ivr_node: Label | None = Field(default=None, description="ivr: the IVR menu node the caller reached")
    queue: Label | None = Field(default=None, description="queue: the queue the call joined")
    agent: Label | None = Field(default=None, description="answer: the agent (staff subject) who answered")
    category: Category | None = Field(default=None, description="end: the call's category")
    outcome: Outcome | None = Field(default=None, description="end: how the call ended")


class CallEventReport(_Strict):
    events: list[CallEventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_REPORT)


class CallEventReportResult(BaseModel):
    accepted: int = Field(description="Events new to the platform, now stored")
    duplicates: int = Field(description="Events already held (a retried or repeated report)")
    calls: int = Field(description="Calls the report touched")


class CityLineIn(_Strict):
    city_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
    city_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    active: bool = True


class CityLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line: str
    city_code: str
    city_name: str
    active: bool


class CallEventRead(BaseModel):
    event_id: str
    kind: str
    at: datetime
    value: str | None
    category: str | None


class CallChangeRead(BaseModel):
    kind: str
    note: str | None
    category_from: str | None
    category_to: str | None
    actor: str
    at: datetime


class CallRead(BaseModel):
    id: int
    telephony_call_id: str
    state: str
    city_code: str | None
    started_at: datetime | None
    business_date: date | None
    ivr_path: str | None
    queue: str | None
    queued_at: datetime | None
    answered_at: datetime | None
    agent: str | None
    ended_at: datetime | None
    caller_number_masked: str | None
    reported_category: str | None
    category: str | None
    classified_by: str | None
    outcome: str | None
    note: str | None


class CallDetail(CallRead):
    events: list[CallEventRead]
    changes: list[CallChangeRead]


class AnnotationIn(_Strict):
    request_key: Identity = Field(description="The client's key for this change: a retry with it is one change")
    note: Note


class ReclassificationIn(_Strict):
    request_key: Identity = Field(description="The client's key for this change: a retry with it is one change")
    category: Category
    reason: Note


class CallSearch(_Strict):
    caller_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=24)]
    limit: int = Field(default=50, ge=1, le=200)


class FollowUpRead(BaseModel):
    id: int
    call_id: int
    status: str
    opened_at: datetime
    due_at: datetime
    overdue: bool
    escalated_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    note: str | None
    city_code: str | None
    caller_number_masked: str | None


class FollowUpClose(_Strict):
    note: Note


class CityCalls(BaseModel):
    city: str
    name: str
    calls: int


class Peak(BaseModel):
    calls: int


class PeakDay(Peak):
    day: date


class PeakHour(Peak):
    hour: int = Field(description="Hour of the day (Asia/Shanghai), 0-23: the month's busiest clock hour")


class CallStatistics(BaseModel):
    month: str
    total: int
    by_city: list[CityCalls]
    by_category: dict[str, int] = Field(description="The six categories, plus `uncategorized` when any")
    by_city_and_category: dict[str, dict[str, int]]
    peak_day: PeakDay | None
    peak_hour: PeakHour | None


class WorkOrderCounts(BaseModel):
    """Work orders received in the month, by source (the scenario format's `hotline.work_orders`)."""

    city_12345: int
    province_12345: int
    self_received: int


class WorkOrderPerformance(BaseModel):
    """How the month's work orders were worked: each close judged by its deadline, each satisfaction callback."""

    closed: int = Field(description="Closings in the month (an order reopened and closed again counts twice)")
    closed_on_time: int = Field(description="Of those, the ones by the deadline the order then had")
    on_time_rate_pct: str | None = Field(description="closed_on_time / closed, percent with two decimals; "
                                                     "null if none closed")
    callbacks: int = Field(description="Satisfaction callbacks in the month")
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    satisfaction_rate_pct: str | None = Field(description="(satisfied + basically satisfied) / callbacks, percent "
                                                          "with two decimals; null if no callback")


class SelfServiceFigures(BaseModel):
    asked: int = Field(description="Self-service questions the IVR asked the knowledge base in the month")
    answered: int = Field(description="Of those, the ones answered at or above the confidence threshold")
    answer_rate_pct: str | None = Field(description="answered / asked, percent with two decimals; null if none")


class HotlineMonth(BaseModel):
    """The month's hotline statistics for the bulletin: the province's calls by city, the region city's calls
    by category (they sum to its calls), the knowledge base's answer rate, the peaks, the work orders by source
    and how they were worked."""

    month: str
    region_city: str
    total: int = Field(description="Calls of every city of the province")
    calls_by_city: list[CityCalls]
    region_calls: int
    calls_by_category: dict[str, int] = Field(description="The region city's calls in the six categories")
    self_service: SelfServiceFigures
    peak_day: PeakDay | None
    peak_hour: PeakHour | None
    work_orders: WorkOrderCounts = Field(description="Work orders received in the month, by source")
    work_order_performance: WorkOrderPerformance
