"""Booking tables: release policies, templates, sessions (号源 pools), bookings, holds, sanctions, waitlist,
the notification outbox, the call-back list, idempotency keys and the statistics counters."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

CHANNELS = ("online_12320", "phone", "clinic", "third_party")
FEE_CLASSES = ("general", "expert", "special_needs")  # 普通 / 专家 / 特需
SESSION_STATUSES = ("open", "suspended")
# held: a slot kept for at most the hold time; booked/checked_in: the patient holds the slot.
BOOKING_STATUSES = ("held", "booked", "checked_in", "cancelled", "expired", "no_show", "rescheduled")
ACTIVE_STATUSES = ("held", "booked", "checked_in")
WAITLIST_STATUSES = ("waiting", "offered", "booked", "expired", "skipped", "cancelled")
# lapsed: its moment passed before it was sent (an offer whose hold ended, a reminder of a cancelled booking).
NOTIFICATION_STATUSES = ("pending", "sent", "failed", "no_phone", "lapsed")
_ACTIVE_SQL = "status IN ('held', 'booked', 'checked_in')"


class ReleasePolicy(Base):
    """One hospital's release rules (domain.md §4); a hospital without a row gets the defaults."""

    __tablename__ = "booking_release_policies"
    __table_args__ = (
        CheckConstraint("window_days BETWEEN 1 AND 90", name="window_days"),
        CheckConstraint("hold_minutes BETWEEN 1 AND 15", name="hold_minutes"),
        CheckConstraint("cancel_cutoff_days_before BETWEEN 0 AND 30", name="cancel_cutoff_days_before"),
        CheckConstraint("pickup_grace_minutes BETWEEN 0 AND 720", name="pickup_grace_minutes"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer)
    release_time: Mapped[time] = mapped_column(Time)
    same_day_allowed: Mapped[bool] = mapped_column(Boolean)
    next_day_cutoff: Mapped[time] = mapped_column(Time)
    cancellation_allowed: Mapped[bool] = mapped_column(Boolean)
    cancel_cutoff_days_before: Mapped[int] = mapped_column(Integer)
    cancel_cutoff_time: Mapped[time] = mapped_column(Time)
    pickup_grace_minutes: Mapped[int] = mapped_column(Integer)
    hold_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionTemplate(Base):
    """A weekly pattern a hospital generates sessions from (e.g. every Monday morning, 30 slots)."""

    __tablename__ = "booking_templates"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("capacity BETWEEN 1 AND 2000", name="capacity"),
        CheckConstraint(f"fee_class IN {FEE_CLASSES!r}", name="fee_class"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioners.id"))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # ISO: 1 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column(Integer)
    fee_class: Mapped[str] = mapped_column(String(16))
    quota_online_12320: Mapped[int | None] = mapped_column(Integer)
    quota_phone: Mapped[int | None] = mapped_column(Integer)
    quota_clinic: Mapped[int | None] = mapped_column(Integer)
    quota_third_party: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BookingSession(Base):
    """One clinic session's pool of slots (号源), shared by every channel.

    The row is the single point that serialises the session's bookings: a writer locks it, asks the one
    booking rule (`slots.refusal`) and writes the counters back; the CHECKs below and the bookings' unique
    indexes are the backstop. `slot_map` has one character per slot number ('1' taken, '0' free), from
    which the slot numbers are handed out.
    A channel with a quota has that many slots reserved for it and may take no more; channels without a
    quota share `open_capacity` = capacity minus the quotas.
    """

    __tablename__ = "booking_sessions"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id"),
        CheckConstraint("capacity BETWEEN 1 AND 2000", name="capacity"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked"),
        CheckConstraint("open_booked >= 0 AND open_booked <= open_capacity", name="open_booked"),
        CheckConstraint(f"status IN {SESSION_STATUSES!r}", name="status"),
        CheckConstraint(f"fee_class IN {FEE_CLASSES!r}", name="fee_class"),
        CheckConstraint("ends_at > starts_at", name="time_range"),
        Index("ix_booking_sessions_organization_id_service_date", "organization_id", "service_date"),
        Index("ix_booking_sessions_department_id_service_date", "department_id", "service_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioners.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))  # the hospital's own session key
    template_id: Mapped[int | None] = mapped_column(ForeignKey("booking_templates.id"))
    service_date: Mapped[date] = mapped_column(Date)  # Asia/Shanghai day of the session
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pickup_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fee_class: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    slot_map: Mapped[str] = mapped_column(Text)
    last_slot_no: Mapped[int] = mapped_column(Integer, default=0)
    open_capacity: Mapped[int] = mapped_column(Integer)
    open_booked: Mapped[int] = mapped_column(Integer, default=0)
    quota_online_12320: Mapped[int | None] = mapped_column(Integer)
    quota_phone: Mapped[int | None] = mapped_column(Integer)
    quota_clinic: Mapped[int | None] = mapped_column(Integer)
    quota_third_party: Mapped[int | None] = mapped_column(Integer)
    booked_online_12320: Mapped[int] = mapped_column(Integer, default=0)
    booked_phone: Mapped[int] = mapped_column(Integer, default=0)
    booked_clinic: Mapped[int] = mapped_column(Integer, default=0)
    booked_third_party: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    suspended_reason: Mapped[str | None] = mapped_column(String(255))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Booking(Base):
    """A resident's appointment (or hold) on a session. Active rows are unique per resident, department
    and day, and per session slot number: the database itself refuses a double booking."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(f"status IN {BOOKING_STATUSES!r}", name="status"),
        CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
        Index("uq_bookings_resident_department_day", "resident_id", "department_id", "service_date",
              unique=True, sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("uq_bookings_session_slot", "session_id", "slot_no",
              unique=True, sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_bookings_resident_id_service_date", "resident_id", "service_date"),
        Index("ix_bookings_session_id_status", "session_id", "status"),
        Index("ix_bookings_status_hold_expires_at", "status", "hold_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("booking_sessions.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    service_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    slot_no: Mapped[int] = mapped_column(Integer)
    estimated_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the slot's expected time (分时段)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    channel: Mapped[str] = mapped_column(String(16))
    client_app_id: Mapped[int | None] = mapped_column(ForeignKey("client_apps.id"))
    status: Mapped[str] = mapped_column(String(16))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cancelled / expired / no-show
    end_reason: Mapped[str | None] = mapped_column(String(48))
    rescheduled_to_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(96))  # principal subject
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResidentDay(Base):
    """A row per resident and day, locked by every booking for that day before the caps are counted:
    two concurrent bookings of one resident cannot both see "one department so far"."""

    __tablename__ = "booking_resident_days"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True)
    service_date: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class IdempotencyKey(Base):
    """The stored result of a write made with an Idempotency-Key (IETF httpapi draft)."""

    __tablename__ = "booking_idempotency_keys"
    __table_args__ = (UniqueConstraint("subject", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(96))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SanctionRule(Base):
    """The platform's no-show rule (a single row, id 1; absent means the defaults)."""

    __tablename__ = "booking_sanction_rules"
    __table_args__ = (
        CheckConstraint("no_show_threshold >= 1", name="threshold"),
        CheckConstraint("window_days >= 1 AND ban_days >= 1", name="days"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    no_show_threshold: Mapped[int] = mapped_column(Integer)
    window_days: Mapped[int] = mapped_column(Integer)
    ban_days: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(96))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Sanction(Base):
    """A booking ban on every channel; lifted early only by staff, with a reason."""

    __tablename__ = "booking_sanctions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    rule: Mapped[str] = mapped_column(String(48))
    no_show_count: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(96))
    lift_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WaitlistEntry(Base):
    __tablename__ = "booking_waitlist"
    __table_args__ = (
        CheckConstraint(f"status IN {WAITLIST_STATUSES!r}", name="status"),
        CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
        Index("uq_booking_waitlist_session_resident", "session_id", "resident_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'offered')"),
              postgresql_where=text("status IN ('waiting', 'offered')")),
        Index("ix_booking_waitlist_session_id_status", "session_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("booking_sessions.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    channel: Mapped[str] = mapped_column(String(16))
    client_app_id: Mapped[int | None] = mapped_column(ForeignKey("client_apps.id"))
    status: Mapped[str] = mapped_column(String(16))
    offered_booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notification(Base):
    """The outbox: one message per patient, written in the transaction that causes it, sent later."""

    __tablename__ = "booking_notifications"
    __table_args__ = (
        CheckConstraint(f"status IN {NOTIFICATION_STATUSES!r}", name="status"),
        Index("ix_booking_notifications_status_id", "status", "id"),
        # One message of a kind per booking, however often its cause is retried or its job rerun.
        Index("uq_booking_notifications_booking_id_kind", "booking_id", "kind", unique=True,
              sqlite_where=text("booking_id IS NOT NULL"), postgresql_where=text("booking_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    # session_suspended, waitlist_offer, booking_confirmed, booking_cancelled, booking_reminder
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)  # no personal data: hospital, department, date
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Callback(Base):
    """The hotline agents' call-back list: patients to phone about a suspended session."""

    __tablename__ = "booking_callbacks"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'done')", name="status"),
        UniqueConstraint("booking_id", "reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("booking_sessions.id"), index=True)
    reason: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text)
    done_by: Mapped[str | None] = mapped_column(String(96))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MonthlyStat(Base):
    """Bookings made per hospital, business month, channel and client app (0 = no app: phone, clinic).

    Kept by the booking transaction itself (+1 when a booking is confirmed); cancellations do not
    subtract, because the bulletin counts the bookings made in the month.
    """

    __tablename__ = "booking_stats_monthly"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, Asia/Shanghai
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    client_app_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bookings: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class OpeningBalance(Base):
    """Bookings made on an older platform before migration, counted into the cumulative total."""

    __tablename__ = "booking_opening_balances"
    __table_args__ = (UniqueConstraint("as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)  # counted in every month ending on or after this day
    bookings: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(96))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


FAMILY_RELATIONSHIPS = ("child", "parent", "spouse", "other")
FAMILY_LINK_STATUSES = ("pending", "active", "revoked")
# guardian_declaration: a minor's guardian declares it; member_confirmation: the adult member confirms through
# their own account; recorded_consent: staff record a consent the member gave in person or on the phone.
CONSENT_BASES = ("guardian_declaration", "member_confirmation", "recorded_consent")


class FamilyLink(Base):
    """A resident (the manager) who books for another master-index resident (the member), with that member's
    consent; one row per pair, revoked and renewed in place, every change audited."""

    __tablename__ = "booking_family_links"
    __table_args__ = (
        CheckConstraint(f"status IN {FAMILY_LINK_STATUSES!r}", name="status"),
        CheckConstraint(f"relationship IN {FAMILY_RELATIONSHIPS!r}", name="relationship"),
        CheckConstraint(f"consent_basis IS NULL OR consent_basis IN {CONSENT_BASES!r}", name="consent_basis"),
        CheckConstraint("manager_resident_id <> member_resident_id", name="not_self"),
        CheckConstraint("status <> 'active' OR consented_at IS NOT NULL", name="active_has_consent"),
        UniqueConstraint("manager_resident_id", "member_resident_id"),
        Index("ix_booking_family_links_member_resident_id", "member_resident_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    manager_resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    member_resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    relationship: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    consent_basis: Mapped[str | None] = mapped_column(String(32))
    consented_by: Mapped[str | None] = mapped_column(String(96))
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_note: Mapped[str | None] = mapped_column(String(200))
    revoked_by: Mapped[str | None] = mapped_column(String(96))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageSettings(Base):
    """One hospital's patient messages: which kinds are sent, and when the day-before reminder goes out
    (Asia/Shanghai wall time); a hospital without a row gets the defaults (all on, 18:00)."""

    __tablename__ = "booking_message_settings"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    confirmation_enabled: Mapped[bool] = mapped_column(Boolean)
    cancellation_enabled: Mapped[bool] = mapped_column(Boolean)
    reminder_enabled: Mapped[bool] = mapped_column(Boolean)
    reminder_time: Mapped[time] = mapped_column(Time)
    updated_by: Mapped[str] = mapped_column(String(96))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The feed validator's aggregate (feed_repository.feed_state) read from the index alone on PostgreSQL: a day's
# sessions by service_date, with every column it filters on or aggregates (an index-only scan, no heap reads).
Index("ix_booking_sessions_service_date_feed", BookingSession.service_date,
      postgresql_include=["released_at", "starts_at", "updated_at", "booked", "status"])
