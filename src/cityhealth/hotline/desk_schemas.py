"""Request and response shapes of the agent desk and the supervisor's view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cityhealth.booking.service import BookingRead
from cityhealth.db.types import RowId
from cityhealth.hotline.schemas import CallRead, CallStatistics

RequestKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                              pattern=r"^[A-Za-z0-9._:\-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallerRead(BaseModel):
    """The resident identified as a call's caller, masked (the agent hears the rest from the caller)."""

    resident_id: int
    name: str
    id_number_masked: str
    phone_masked: str | None
    birth_date: date
    method: str
    identified_at: datetime


class CallBookingRead(BaseModel):
    booking_id: int
    action: str
    agent: str
    at: datetime


class DeskCall(CallRead):
    """An open call of the agent's, with its identified caller and what was booked in it."""

    caller: CallerRead | None
    bookings: list[CallBookingRead]


class IdentifyIn(_Strict):
    """One way to name the caller: an ID number; a name with a birth date; a phone number."""

    id_number: str | None = Field(default=None, min_length=1, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=64)
    birth_date: date | None = None
    phone: str | None = Field(default=None, min_length=1, max_length=24)

    @model_validator(mode="after")
    def _one_way(self) -> IdentifyIn:
        ways = [self.id_number is not None, self.name is not None or self.birth_date is not None,
                self.phone is not None]
        if sum(ways) != 1 or ((self.name is None) != (self.birth_date is None)):
            raise ValueError("identify by id_number, by name together with birth_date, or by phone (one of them)")
        return self


class IdentifyResult(BaseModel):
    """The lookup's answer: the caller when exactly one resident matched (then tied to the call)."""

    call_id: int
    matches: int
    caller: CallerRead | None
    message: str


class DeskBookIn(_Strict):
    session_id: RowId


class DeskRescheduleIn(_Strict):
    session_id: RowId


class DeskBookingResult(BaseModel):
    call_id: int
    action: Literal["book", "cancel", "reschedule"]
    booking: BookingRead


class CallbackItem(BaseModel):
    """A resident to call back about a suspended session: masked outside the call-back action."""

    id: int
    booking_id: int
    session_id: int
    reason: str
    created_at: datetime
    name_masked: str
    phone_masked: str | None
    attempts: int
    last_outcome: str | None


class CallbackDial(BaseModel):
    """What the agent dials: the whole number, shown only in the call-back action (audited as revealed)."""

    id: int
    phone: str | None
    name: str


class CallbackResultIn(_Strict):
    request_key: RequestKey
    outcome: Literal["reached", "not_reached"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class CallbackResult(BaseModel):
    id: int
    outcome: str
    status: str  # the call-back's: done once the resident was reached
    attempts: int


class QueueState(BaseModel):
    queue: str
    waiting: int
    longest_wait_s: int


class AgentState(BaseModel):
    agent: str
    on_call: bool
    call_id: int | None
    idle_since: datetime | None
    calls_today: int


class TodayFigures(BaseModel):
    day: date
    calls: int
    answered: int
    ended: int
    abandoned: int
    by_category: dict[str, int]


class SupervisorView(BaseModel):
    at: datetime
    queues: list[QueueState]
    agents: list[AgentState]
    today: TodayFigures
    month: CallStatistics


class Reconciliation(BaseModel):
    """Phone bookings against phone_booking calls over a period; the id lists show at most 100 each."""

    first: date
    last: date
    phone_bookings: int
    phone_bookings_with_call: int
    phone_bookings_without_call: list[int]
    phone_booking_calls: int
    phone_booking_calls_with_booking: int
    phone_booking_calls_without_booking: list[int]
