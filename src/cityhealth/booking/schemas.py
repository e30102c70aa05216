"""Request and response shapes of the booking API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from cityhealth.db.types import RowId
from cityhealth.registry.service import FacilityNear

FeeClass = Literal["general", "expert", "special_needs"]
# Asia/Shanghai has kept UTC+08:00 all year since 1991, so a wall time there has this one offset.
BUSINESS_OFFSET = timezone(timedelta(hours=8))


def _wall_time(value: time) -> time:
    if value.tzinfo is not None and value.utcoffset() != timedelta(hours=8):
        raise ValueError("a time is an Asia/Shanghai wall time: no offset, or +08:00")
    return value.replace(tzinfo=None)


def _with_offset(value: time) -> time:
    return value.replace(tzinfo=BUSINESS_OFFSET)


BusinessTime = Annotated[time, AfterValidator(_wall_time),
                         PlainSerializer(_with_offset, return_type=time, when_used="json")]
"""An Asia/Shanghai wall time: read without an offset or with +08:00, kept naive, and written with its
offset (08:00:00+08:00), as OpenAPI's `format: time` (RFC 3339 full-time) requires."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Quotas(_Input):
    """Slots reserved for (and the most taken by) a channel; a channel left out shares the rest."""

    online_12320: int | None = Field(default=None, ge=0)
    phone: int | None = Field(default=None, ge=0)
    clinic: int | None = Field(default=None, ge=0)
    third_party: int | None = Field(default=None, ge=0)


class SessionCreate(_Input):
    external_id: str = Field(min_length=1, max_length=64, description="the hospital's own key for the session")
    organization_id: RowId | None = Field(default=None, description="defaults to the caller's organization")
    department_id: RowId
    practitioner_id: RowId | None = None
    service_date: date
    start_time: BusinessTime = Field(description="Asia/Shanghai wall time")
    end_time: BusinessTime
    capacity: int = Field(ge=1, le=2000)
    fee_class: FeeClass = "general"
    quotas: Quotas = Field(default_factory=Quotas)

    @model_validator(mode="after")
    def _times(self) -> SessionCreate:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class SessionRead(_Output):
    id: int
    organization_id: RowId
    department_id: RowId
    practitioner_id: RowId | None
    external_id: str
    service_date: date
    starts_at: datetime
    ends_at: datetime
    pickup_deadline: datetime
    released_at: datetime
    fee_class: str
    capacity: int
    booked: int
    available: int
    status: str
    quotas: dict[str, int | None]


class AvailabilityRead(BaseModel):
    """A session as the availability search shows it: a hint, re-checked when booking."""

    id: int
    organization_id: RowId
    department_id: RowId
    practitioner_id: RowId | None
    service_date: date
    starts_at: datetime
    ends_at: datetime
    fee_class: str
    capacity: int
    available: int
    status: str
    released: bool


class DepartmentSlots(BaseModel):
    department_id: RowId
    department: str
    free_slots: int


class TodaySlots(BaseModel):
    """An organization's slots of today (Asia/Shanghai) that the asking channel could book now: the booking
    rule's answer per session (none where it refuses, e.g. a hospital that takes no same-day bookings)."""

    sessions: int = Field(description="today's sessions, bookable now or not")
    free_slots: int
    by_department: list[DepartmentSlots] = Field(description="departments with a free slot, most free first")


class NearbyFacility(FacilityNear):
    today: TodaySlots


class NearbyPage(BaseModel):
    """A page of the medical e-map's `near` search (the registry's NearPage), each facility with today's slots."""

    items: list[NearbyFacility]
    total: int = Field(description="facilities within the radius that pass the filters")
    limit: int
    offset: int
    latitude: float = Field(description="the search's centre, WGS-84")
    longitude: float


class TemplateCreate(_Input):
    organization_id: RowId | None = None
    department_id: RowId
    practitioner_id: RowId | None = None
    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday")
    start_time: BusinessTime
    end_time: BusinessTime
    capacity: int = Field(ge=1, le=2000)
    fee_class: FeeClass = "general"
    quotas: Quotas = Field(default_factory=Quotas)

    @model_validator(mode="after")
    def _times(self) -> TemplateCreate:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class TemplateRead(_Output):
    id: int
    organization_id: RowId
    department_id: RowId
    practitioner_id: RowId | None
    weekday: int
    start_time: BusinessTime
    end_time: BusinessTime
    capacity: int
    fee_class: str
    is_active: bool


class GenerateRequest(_Input):
    organization_id: RowId | None = None
    date_from: date
    date_to: date

    @model_validator(mode="after")
    def _range(self) -> GenerateRequest:
        if self.date_to < self.date_from or (self.date_to - self.date_from).days > 62:
            raise ValueError("date_to must be on or after date_from, at most 62 days later")
        return self


class GenerateResult(BaseModel):
    created: int
    existing: int


class PolicyUpdate(_Input):
    window_days: int = Field(default=7, ge=1, le=90)
    release_time: BusinessTime = time(0, 0)
    same_day_allowed: bool = False
    next_day_cutoff: BusinessTime = time(12, 0)
    cancellation_allowed: bool = True
    cancel_cutoff_days_before: int = Field(default=1, ge=0, le=30)
    cancel_cutoff_time: BusinessTime = time(16, 0)
    pickup_grace_minutes: int = Field(default=30, ge=0, le=720)
    hold_minutes: int = Field(default=15, ge=1, le=15)


class PolicyRead(PolicyUpdate):
    model_config = ConfigDict(extra="ignore")
    organization_id: RowId


class BookingCreate(_Input):
    """Book a slot of `session_id`, or confirm the hold `hold_id`; one of the two."""

    session_id: RowId | None = None
    hold_id: RowId | None = None
    id_number: str | None = Field(default=None, max_length=32,
                                  description="the resident's ID number (not for residents booking for themselves)")
    channel: str | None = Field(default=None, max_length=32,
                                description="optional; derived from the caller and refused if it disagrees")

    @model_validator(mode="after")
    def _one_target(self) -> BookingCreate:
        if (self.session_id is None) == (self.hold_id is None):
            raise ValueError("give exactly one of session_id and hold_id")
        return self


class HoldCreate(_Input):
    session_id: RowId
    id_number: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=32)


class RescheduleRequest(_Input):
    session_id: RowId
    id_number: str | None = Field(default=None, max_length=32)
    slot_no: int | None = Field(default=None, ge=1, le=9999,
                                description="a specific slot (号) of the session; none: the first free one")


class CancelRequest(_Input):
    id_number: str | None = Field(default=None, max_length=32,
                                  description="hotline agents name the resident the booking is for")


class ResidentLookup(_Input):
    """An ID number in a POST body, so that it never appears in a URL or an access log."""

    id_number: str = Field(min_length=1, max_length=32)


class BookingRead(_Output):
    id: int
    session_id: RowId
    organization_id: RowId
    department_id: RowId
    service_date: date
    starts_at: datetime
    ends_at: datetime
    slot_no: int
    estimated_at: datetime
    status: str
    channel: str
    client_app_id: RowId | None
    hold_expires_at: datetime | None
    booked_at: datetime | None
    checked_in_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class WaitlistCreate(_Input):
    session_id: RowId
    id_number: str | None = Field(default=None, max_length=32)


class WaitlistRead(_Output):
    id: int
    session_id: RowId
    status: str
    position: int | None
    offered_booking_id: RowId | None
    created_at: datetime


class SuspendRequest(_Input):
    reason: str = Field(min_length=2, max_length=255)


class SuspendResult(BaseModel):
    session_id: RowId
    status: str
    cancelled_bookings: int
    notifications_queued: int
    callbacks_created: int


class SanctionRuleUpdate(_Input):
    no_show_threshold: int = Field(default=3, ge=1, le=100)
    window_days: int = Field(default=90, ge=1, le=3650)
    ban_days: int = Field(default=90, ge=1, le=3650)


class SanctionRuleRead(SanctionRuleUpdate):
    model_config = ConfigDict(extra="ignore")


class SanctionRead(_Output):
    id: int
    rule: str
    no_show_count: int
    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None
    lift_reason: str | None


class SanctionLift(_Input):
    reason: str = Field(min_length=5, max_length=1000)


class CallbackRead(_Output):
    id: int
    booking_id: RowId
    session_id: RowId
    reason: str
    status: str
    created_at: datetime


class OpeningBalanceCreate(_Input):
    as_of: date
    bookings: int = Field(ge=0)
    note: str | None = Field(default=None, max_length=1000)


class OpeningBalanceRead(_Output):
    id: int
    as_of: date
    bookings: int
    note: str | None


class HospitalRow(BaseModel):
    hospital: str
    online_12320: int
    phone: int
    clinic: int
    third_party: int


class AppRow(BaseModel):
    app: str
    bookings: int


class BookingStatistics(BaseModel):
    """The scenario format's `booking` section (scenario-format.md)."""

    by_hospital: list[HospitalRow]
    by_app: list[AppRow]
    cumulative_at_month_end: int


# --- Family members (booking/family.py) and the scheduler's view of a session (booking/scheduler_service.py) ---


class FamilyMemberCreate(_Input):
    """A manager names a family member of the master index by ID number and name (the real-name check)."""

    id_number: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    relationship: Literal["child", "parent", "spouse", "other"]
    guardian_declaration: bool = Field(
        default=False, description="for a minor: the manager declares to be the member's guardian (the consent)")


class ConsentRecord(_Input):
    """Staff record a consent the member gave in person or on the phone: where and how, no personal data."""

    note: str = Field(min_length=2, max_length=200)


class FamilyLinkRead(BaseModel):
    id: int
    role: Literal["manager", "member"]  # the caller's side of the link
    relationship: str
    # As it stands when read: a guardian-declared link of a member now 18 needs the member's own consent.
    status: Literal["active", "pending", "needs_member_consent", "revoked"]
    consent_basis: str | None
    consented_at: datetime | None
    revoked_at: datetime | None
    manager_name: str  # masked
    member_name: str  # masked
    member_id_number: str  # masked


class SchedulerSlot(BaseModel):
    slot_no: int
    state: Literal["free", "held", "booked", "checked_in"]
    booking_id: int | None


class SchedulerBooking(BaseModel):
    id: int
    slot_no: int
    status: str
    channel: str
    resident: str  # masked name
    resident_id_number: str  # masked
    hold_expires_at: datetime | None
    booked_at: datetime | None
    created_by: str


class SchedulerWaitlistEntry(BaseModel):
    id: int
    position: int | None  # 1 = next offered; None once offered
    status: str
    channel: str
    resident: str  # masked name
    resident_id_number: str  # masked
    offered_booking_id: int | None
    created_at: datetime


class SchedulerSessionView(BaseModel):
    session_id: int
    organization_id: int
    department_id: int
    service_date: date
    starts_at: datetime
    ends_at: datetime
    status: str
    capacity: int
    booked: int
    slots: list[SchedulerSlot]
    holds: list[SchedulerBooking]  # live holds only (not past their expiry), the soonest expiring first
    bookings: list[SchedulerBooking]  # booked and checked in, by slot
    waitlist: list[SchedulerWaitlistEntry]  # waiting and offered entries, in the order they are served


class MessageSettingsUpdate(_Input):
    """Which patient messages a hospital sends, and when the day-before reminder goes out."""

    confirmation_enabled: bool = True
    cancellation_enabled: bool = True
    reminder_enabled: bool = True
    reminder_time: BusinessTime = Field(default=time(18, 0),
                                        description="Asia/Shanghai wall time, the day before the appointment")


class MessageSettingsRead(MessageSettingsUpdate):
    model_config = ConfigDict(extra="ignore")
    organization_id: RowId
