"""Booking queries: attempts, bookings, waitlist, suspension, holds, release policy and sanctions.

The group commit's batch statements are in group_repository.py, the statistics' in statistics_repository.py,
the schedules' in schedule_repository.py, the feeds' and the search's in feed_repository.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, func, insert, literal, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cityhealth.booking.models import (
    ACTIVE_STATUSES,
    CHANNELS,
    Booking,
    BookingSession,
    Callback,
    IdempotencyKey,
    MonthlyStat,
    Notification,
    ReleasePolicy,
    ResidentDay,
    Sanction,
    WaitlistEntry,
)
from cityhealth.booking.slots import LapsedHold, SessionSlots
from cityhealth.db.types import UTCDateTime
from cityhealth.registry.models import ClientApp, Resident


def upsert(dialect: str, table: Any, values: dict[str, Any], keys: list[str], set_: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in the dialect's own syntax (both have it)."""
    statement = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=set_)


@dataclass(frozen=True)
class PreCheck:
    """What the booking path reads before deciding whether a write transaction is worth opening."""

    stored_fingerprint: str | None
    stored_status: int | None
    stored_body: str | None
    app_channel: str | None
    app_active: bool | None
    app_other_channels: str | None  # space-separated further channels of the app
    session: dict[str, Any] | None
    policy: dict[str, Any] | None


_SESSION_COLUMNS: list[Any] = [
    BookingSession.id, BookingSession.organization_id, BookingSession.department_id,
    BookingSession.practitioner_id, BookingSession.service_date, BookingSession.starts_at,
    BookingSession.ends_at, BookingSession.released_at, BookingSession.status, BookingSession.capacity,
    BookingSession.booked, BookingSession.open_capacity, BookingSession.open_booked,
    *(getattr(BookingSession, f"quota_{c}") for c in CHANNELS),
    *(getattr(BookingSession, f"booked_{c}") for c in CHANNELS),
]
_POLICY_COLUMNS: list[Any] = [
    ReleasePolicy.organization_id.label("policy_organization_id"), ReleasePolicy.window_days,
    ReleasePolicy.release_time, ReleasePolicy.same_day_allowed, ReleasePolicy.next_day_cutoff,
    ReleasePolicy.cancellation_allowed, ReleasePolicy.cancel_cutoff_days_before, ReleasePolicy.cancel_cutoff_time,
    ReleasePolicy.pickup_grace_minutes, ReleasePolicy.hold_minutes,
]


def someone_waiting_for(session_id: Any) -> Any:
    """EXISTS a waiting entry for the session: while one does, a lapsed hold's slot goes to the waitlist in
    order (the sweeper offers it), not to whoever attempts first."""
    return exists().where(WaitlistEntry.session_id == session_id, WaitlistEntry.status == literal_column("'waiting'"))


def _pre_check_statement(aggregate: str) -> Any:
    anchor = select(literal(1).label("one")).subquery()
    # The channels of the session's holds lapsed at the attempt's moment: their slots count as free, unless
    # someone waits for the session (the slot is then the waitlist's: someone_waiting_for).
    # (`aggregate`: the dialect's string aggregate; SQLAlchemy's portable one binds its separator late.)
    lapsed = (select(getattr(func, aggregate)(Booking.channel, literal_column("' '")))
              .where(Booking.session_id == BookingSession.id, Booking.status == literal_column("'held'"),
                     Booking.hold_expires_at <= bindparam("now", type_=UTCDateTime),
                     ~someone_waiting_for(BookingSession.id))
              .correlate(BookingSession).scalar_subquery().label("lapsed_channels"))
    return (
        select(IdempotencyKey.fingerprint, IdempotencyKey.response_status, IdempotencyKey.response_body,
               ClientApp.channel, ClientApp.is_active, ClientApp.other_channels, *_SESSION_COLUMNS,
               *_POLICY_COLUMNS, lapsed)
        .select_from(anchor)
        .outerjoin(IdempotencyKey, and_(IdempotencyKey.subject == bindparam("subject"),
                                        IdempotencyKey.key == bindparam("key")))
        .outerjoin(ClientApp, ClientApp.id == bindparam("app_id"))
        .outerjoin(BookingSession, BookingSession.id == bindparam("session_id"))
        .outerjoin(ReleasePolicy, ReleasePolicy.organization_id == BookingSession.organization_id)
    )


# Built once: the statement is on the path of every booking attempt, and building it costs more CPU than
# the database spends answering it.
_PRE_CHECK = _pre_check_statement("group_concat")  # SQLite


_PRE_CHECK_PG = _pre_check_statement("string_agg").compile(
    dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
PRE_CHECK_PG_SQL = str(_PRE_CHECK_PG)


async def pre_check(connection: AsyncConnection | AsyncSession, *, subject: str, key: str,
                    app_id: int | None, session_id: int, now: datetime) -> PreCheck:
    """One round trip: the stored idempotency result, the caller's app, the session (its holds lapsed at
    `now` counted free) and its policy."""
    row = (await connection.execute(_PRE_CHECK, {
        "subject": subject, "key": key, "app_id": app_id if app_id is not None else -1, "session_id": session_id,
        "now": now,
    })).mappings().one()
    return pre_check_of(row)


def pre_check_args(*, subject: str, key: str, app_id: int | None, session_id: int, now: datetime) -> list[Any]:
    """The positional arguments of PRE_CHECK_PG_SQL, for a raw asyncpg connection."""
    values = {"param_1": 1, "subject": subject, "key": key, "app_id": app_id if app_id is not None else -1,
              "session_id": session_id, "now": now}
    return [values[name] for name in _PRE_CHECK_PG.positiontup or ()]


def pre_check_of(row: Any) -> PreCheck:
    session = None
    if row["id"] is not None:
        session = {column.key: row[column.key] for column in _SESSION_COLUMNS}
        # Only the channels count here (the read has no slot map): ids and slots are the batch's to read.
        session["lapsed"] = [LapsedHold(0, 0, channel, 0) for channel in (row["lapsed_channels"] or "").split()]
    policy = None
    if row["policy_organization_id"] is not None:
        policy = {column.key: row[column.key] for column in _POLICY_COLUMNS[1:]}
    return PreCheck(row["fingerprint"], row["response_status"], row["response_body"], row["channel"],
                    row["is_active"], row["other_channels"], session, policy)


async def resident_and_ban(session: AsyncSession, *, now: datetime, resident_id: int | None = None,
                           id_number_hash: str | None = None) -> tuple[int, datetime | None] | None:
    """The active master-index resident and the end of any ban in force on them."""
    ban = (select(func.max(Sanction.ends_at))
           .where(Sanction.resident_id == Resident.id, Sanction.lifted_at.is_(None),
                  Sanction.starts_at <= now, Sanction.ends_at > now)
           .correlate(Resident).scalar_subquery())
    statement = select(Resident.id, ban).where(Resident.is_active.is_(True))
    if resident_id is not None:
        statement = statement.where(Resident.id == resident_id)
    else:
        statement = statement.where(Resident.id_number_hash == id_number_hash)
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    banned_until: datetime | None = row[1]
    if isinstance(banned_until, str):  # SQLite aggregates lose the column type
        banned_until = UTCDateTime().process_result_value(banned_until, session.get_bind().dialect)
    return int(row[0]), banned_until


async def lock_resident_day(session: AsyncSession, resident_id: int, day: date) -> None:
    """Take the resident's day row lock, so caps are counted by one booking at a time."""
    dialect = session.get_bind().dialect.name
    await session.execute(upsert(dialect, ResidentDay.__table__,
                                 {"resident_id": resident_id, "service_date": day, "version": 1},
                                 ["resident_id", "service_date"],
                                 {"version": ResidentDay.__table__.c.version + 1}))


@dataclass(frozen=True)
class DayBooking:
    id: int
    department_id: int
    starts_at: datetime
    ends_at: datetime


async def active_day_bookings(session: AsyncSession, resident_id: int, day: date,
                              now: datetime) -> list[DayBooking]:
    """The resident's bookings and holds of `day`, but for holds lapsed at `now`: the clock decides, not the
    sweeper (see lapsed_day_holds for those)."""
    rows = (await session.execute(
        select(Booking.id, Booking.department_id, Booking.starts_at, Booking.ends_at).where(
            Booking.resident_id == resident_id, Booking.service_date == day,
            Booking.status.in_(ACTIVE_STATUSES), ~lapsed_hold(now))
    )).all()
    return [DayBooking(*row) for row in rows]


def lapsed_hold(now: Any) -> Any:
    """A hold whose time ran out by `now` (an expression over bookings; `now` a value or a bound parameter)."""
    return and_(Booking.status == literal_column("'held'"), Booking.hold_expires_at.is_not(None),
                Booking.hold_expires_at <= now)


_SESSIONS = cast(Table, BookingSession.__table__)


async def session_row(session: AsyncSession, session_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """The session's row as a mapping (what slots.SessionSlots.of reads); `lock`: FOR UPDATE, until the commit.

    A plain Core read: the ORM's identity map would keep counters that this transaction has since rewritten.
    """
    statement = select(*_SESSIONS.c).where(_SESSIONS.c.id == session_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return None if row is None else dict(row)


async def write_slots(session: AsyncSession, slots: SessionSlots, *, booked_before: int, now: datetime,
                      last_slot_no: int | None = None) -> None:
    """Write the session's counters and slot map as `slots` has them after its takes and give-backs.

    The row must have been read under its lock (`session_row(lock=True)`, or the batch's row lock); the
    UPDATE is conditional on the count it read and the table's CHECKs bound every counter: a writer that
    got the counters wrong fails here, loudly, instead of overbooking.
    """
    values: dict[str, Any] = {"booked": slots.booked, "open_booked": slots.open_booked, "slot_map": slots.slot_map,
                              "updated_at": now, **{f"booked_{c}": slots.booked_by[c] for c in CHANNELS}}
    if last_slot_no is not None:
        values["last_slot_no"] = last_slot_no
    updated = (await session.execute(
        update(_SESSIONS).where(_SESSIONS.c.id == slots.session_id, _SESSIONS.c.booked == booked_before)
        .values(**values).returning(_SESSIONS.c.id))).first()
    if updated is None:
        raise RuntimeError(f"session {slots.session_id} changed under its row lock")


async def insert_booking(session: AsyncSession, values: dict[str, Any]) -> int:
    return int((await session.execute(insert(Booking).values(**values).returning(Booking.id))).scalar_one())


async def count_booking(session: AsyncSession, organization_id: int, month: str, channel: str,
                        app_id: int | None) -> None:
    """+1 on the month's counter for this hospital, channel and app (0 = booked without an app)."""
    dialect = session.get_bind().dialect.name
    table = MonthlyStat.__table__
    await session.execute(upsert(dialect, table, {
        "organization_id": organization_id, "month": month, "channel": channel,
        "client_app_id": app_id or 0, "bookings": 1,
    }, ["organization_id", "month", "channel", "client_app_id"], {"bookings": table.c.bookings + 1}))


async def get_booking(session: AsyncSession, booking_id: int, *, lock: bool = False) -> Booking | None:
    statement = select(Booking).where(Booking.id == booking_id)
    if lock:
        statement = statement.with_for_update()
    result: Booking | None = (await session.execute(statement)).scalar_one_or_none()
    return result


async def get_booking_session(session: AsyncSession, session_id: int, *, lock: bool = False) -> BookingSession | None:
    statement = select(BookingSession).where(BookingSession.id == session_id)
    if lock:
        statement = statement.with_for_update()
    result: BookingSession | None = (await session.execute(statement)).scalar_one_or_none()
    return result


async def waitlist_offer_taken(session: AsyncSession, booking_id: int, now: datetime) -> None:
    """A waitlist offer's hold was confirmed: the entry is fulfilled."""
    await session.execute(update(WaitlistEntry).where(WaitlistEntry.offered_booking_id == booking_id,
                                                      WaitlistEntry.status == "offered")
                          .values(status="booked", updated_at=now))


async def set_booking(session: AsyncSession, booking_id: int, **values: Any) -> None:
    await session.execute(update(Booking).where(Booking.id == booking_id).values(**values))


async def resident_bookings(session: AsyncSession, resident_id: int, *, limit: int = 200) -> list[Booking]:
    """A resident's own bookings, the latest day first."""
    rows = await session.execute(select(Booking).where(Booking.resident_id == resident_id)
                                 .order_by(Booking.service_date.desc(), Booking.id.desc()).limit(limit))
    return list(rows.scalars())


# --- Waitlist ----------------------------------------------------------------------------------------------


async def waiting_position(session: AsyncSession, entry: WaitlistEntry) -> int:
    """The entry's place among the session's waiting entries (1 = next)."""
    return int((await session.execute(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.session_id == entry.session_id, WaitlistEntry.status == "waiting",
        WaitlistEntry.id <= entry.id))).scalar_one())


async def open_waitlist_entry(session: AsyncSession, session_id: int, resident_id: int) -> WaitlistEntry | None:
    """The resident's waiting or offered entry on the session, if any."""
    result: WaitlistEntry | None = (await session.execute(select(WaitlistEntry).where(
        WaitlistEntry.session_id == session_id, WaitlistEntry.resident_id == resident_id,
        WaitlistEntry.status.in_(("waiting", "offered"))))).scalar_one_or_none()
    return result


async def first_waiting(session: AsyncSession, session_id: int) -> WaitlistEntry | None:
    """The oldest waiting entry of the session, locked."""
    result: WaitlistEntry | None = (await session.execute(select(WaitlistEntry).where(
        WaitlistEntry.session_id == session_id, WaitlistEntry.status == "waiting")
        .order_by(WaitlistEntry.id).limit(1).with_for_update())).scalar_one_or_none()
    return result


async def is_banned(session: AsyncSession, resident_id: int, now: datetime) -> bool:
    """A no-show ban is in force on the resident."""
    return bool((await session.execute(select(func.count()).select_from(Sanction).where(
        Sanction.resident_id == resident_id, Sanction.lifted_at.is_(None), Sanction.starts_at <= now,
        Sanction.ends_at > now))).scalar_one())


async def waitlist_offered(session: AsyncSession, entry_id: int, hold_id: int, now: datetime) -> None:
    await session.execute(update(WaitlistEntry).where(WaitlistEntry.id == entry_id).values(
        status="offered", offered_booking_id=hold_id, updated_at=now))


async def waitlist_offer_expired(session: AsyncSession, booking_id: int, now: datetime) -> None:
    """The hold offered to a waiting resident ended unconfirmed (cancelled or expired)."""
    await session.execute(update(WaitlistEntry).where(WaitlistEntry.offered_booking_id == booking_id,
                                                      WaitlistEntry.status == "offered")
                          .values(status="expired", updated_at=now))


# --- Suspension, holds, no-shows ---------------------------------------------------------------------------


async def active_session_bookings(session: AsyncSession, session_id: int) -> list[Booking]:
    return list((await session.execute(select(Booking).where(
        Booking.session_id == session_id, Booking.status.in_(ACTIVE_STATUSES)).order_by(Booking.id))).scalars())


async def suspend(session: AsyncSession, row: BookingSession, reason: str, end_reason: str, now: datetime) -> None:
    """Cancel the session's active bookings and waitlist, and mark it suspended with every slot free."""
    await session.execute(update(Booking).where(
        Booking.session_id == row.id, Booking.status.in_(ACTIVE_STATUSES)).values(
        status="cancelled", ended_at=now, end_reason=end_reason, hold_expires_at=None, updated_at=now))
    zeroes = {f"booked_{channel}": 0 for channel in CHANNELS}
    await session.execute(update(BookingSession).where(BookingSession.id == row.id).values(
        status="suspended", suspended_reason=reason, suspended_at=now, booked=0, open_booked=0,
        slot_map="0" * row.capacity, updated_at=now, **zeroes))
    await session.execute(update(WaitlistEntry).where(
        WaitlistEntry.session_id == row.id,
        WaitlistEntry.status.in_(("waiting", "offered"))).values(status="cancelled", updated_at=now))


async def suspension_counts(session: AsyncSession, session_id: int, reason: str) -> tuple[int, int, int]:
    """(bookings cancelled, messages queued, call-backs created) for the session's suspension."""
    cancelled = (await session.execute(select(func.count()).select_from(Booking).where(
        Booking.session_id == session_id, Booking.end_reason == reason))).scalar_one()
    queued = (await session.execute(select(func.count()).select_from(Notification).join(
        Booking, Booking.id == Notification.booking_id).where(
        Booking.session_id == session_id, Notification.kind == reason))).scalar_one()
    callbacks = (await session.execute(select(func.count()).select_from(Callback).where(
        Callback.session_id == session_id, Callback.reason == reason))).scalar_one()
    return int(cancelled), int(queued), int(callbacks)


async def channel_booking_ids(session: AsyncSession, channel: str, first: datetime, until: datetime) -> list[int]:
    """Bookings made (confirmed) through `channel` in [first, until), by id."""
    statement = (select(Booking.id).where(Booking.channel == channel, Booking.booked_at >= first,
                                          Booking.booked_at < until).order_by(Booking.id))
    return list((await session.execute(statement)).scalars())


async def open_callbacks(session: AsyncSession, limit: int) -> list[Callback]:
    return list((await session.execute(select(Callback).where(Callback.status == "open").order_by(Callback.id)
                                       .limit(limit))).scalars())


async def expired_holds(session: AsyncSession, now: datetime, *, skip_locked: bool) -> list[Booking]:
    """Holds past their expiry, oldest first (locked; those another sweeper holds skipped, on PostgreSQL)."""
    statement = select(Booking).where(Booking.status == "held", Booking.hold_expires_at <= now).order_by(Booking.id)
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return list((await session.execute(statement)).scalars())


async def missed_bookings(session: AsyncSession, now: datetime) -> list[tuple[int, int]]:
    """(booking, resident) of the bookings not checked in by their session's pick-up deadline."""
    rows = (await session.execute(
        select(Booking.id, Booking.resident_id).join(BookingSession, BookingSession.id == Booking.session_id)
        .where(Booking.status == "booked", BookingSession.pickup_deadline < now).order_by(Booking.id))).all()
    return [(int(booking_id), int(resident_id)) for booking_id, resident_id in rows]


# --- Release policy ----------------------------------------------------------------------------------------


async def unreleased_sessions(session: AsyncSession, organization_id: int,
                              now: datetime) -> list[tuple[int, date, datetime]]:
    """(id, day, start) of the hospital's sessions not released yet."""
    rows = (await session.execute(
        select(BookingSession.id, BookingSession.service_date, BookingSession.starts_at).where(
            BookingSession.organization_id == organization_id, BookingSession.released_at > now))).all()
    return [(int(r[0]), r[1], r[2]) for r in rows]


async def set_release(session: AsyncSession, session_id: int, released_at: datetime, pickup_deadline: datetime,
                      now: datetime) -> None:
    await session.execute(update(BookingSession).where(BookingSession.id == session_id).values(
        released_at=released_at, pickup_deadline=pickup_deadline, updated_at=now))


# --- Sanctions ---------------------------------------------------------------------------------------------


async def has_active_sanction(session: AsyncSession, resident_id: int, now: datetime) -> bool:
    """A sanction not lifted and not over (one starting later counts too)."""
    return bool((await session.execute(select(func.count()).select_from(Sanction).where(
        Sanction.resident_id == resident_id, Sanction.lifted_at.is_(None), Sanction.ends_at > now))).scalar_one())


async def no_shows_to_count(session: AsyncSession, resident_id: int, since: datetime) -> int:
    """The resident's no-shows after `since` and after the start of their last sanction (counted once)."""
    last_start = (await session.execute(select(func.max(Sanction.starts_at)).where(
        Sanction.resident_id == resident_id))).scalar_one()
    statement = select(func.count()).select_from(Booking).where(
        Booking.resident_id == resident_id, Booking.status == "no_show", Booking.ended_at > since)
    if last_start is not None:
        statement = statement.where(Booking.ended_at > last_start)
    return int((await session.execute(statement)).scalar_one())


async def resident_by_hash(session: AsyncSession, id_number_hash: str) -> int | None:
    found: int | None = (await session.execute(select(Resident.id).where(
        Resident.id_number_hash == id_number_hash))).scalar_one_or_none()
    return found


async def sanctions_of(session: AsyncSession, resident_id: int) -> list[Sanction]:
    return list((await session.execute(select(Sanction).where(Sanction.resident_id == resident_id)
                                       .order_by(Sanction.id))).scalars())


# --- Waitlist: a resident's entries, leaving, expiry ---------------------------------------------------------


async def resident_waitlist(session: AsyncSession, resident_id: int, *, limit: int = 200) -> list[WaitlistEntry]:
    """A resident's waitlist entries, the latest first."""
    return list((await session.execute(select(WaitlistEntry).where(WaitlistEntry.resident_id == resident_id)
                                       .order_by(WaitlistEntry.id.desc()).limit(limit))).scalars())


async def get_waitlist_entry(session: AsyncSession, entry_id: int, *, lock: bool = False) -> WaitlistEntry | None:
    statement = select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
    if lock:
        statement = statement.with_for_update()
    result: WaitlistEntry | None = (await session.execute(statement)).scalar_one_or_none()
    return result


async def set_waitlist_status(session: AsyncSession, entry_ids: list[int], status: str, now: datetime) -> int:
    """Move waiting entries to `status` (those no longer waiting are left as they are); how many moved."""
    if not entry_ids:
        return 0
    moved = await session.execute(update(WaitlistEntry).where(
        WaitlistEntry.id.in_(entry_ids), WaitlistEntry.status == "waiting").values(status=status, updated_at=now)
        .returning(WaitlistEntry.id))
    return len(moved.all())


async def waiting_until(session: AsyncSession, last_day: date) -> list[tuple[int, int, str, int]]:
    """(entry, session, channel, resident) of the entries still waiting for a session on or before `last_day`."""
    rows = (await session.execute(
        select(WaitlistEntry.id, WaitlistEntry.session_id, WaitlistEntry.channel, WaitlistEntry.resident_id)
        .join(BookingSession, BookingSession.id == WaitlistEntry.session_id)
        .where(WaitlistEntry.status == "waiting", BookingSession.service_date <= last_day)
        .order_by(WaitlistEntry.id))).all()
    return [(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]


async def lapsed_holds(session: AsyncSession, session_id: int, now: datetime) -> list[LapsedHold]:
    """The session's holds lapsed at `now` whose slots count as free: none while someone waits for it (the
    sweeper then offers them in order)."""
    rows = (await session.execute(
        select(Booking.id, Booking.resident_id, Booking.channel, Booking.slot_no).where(
            Booking.session_id == session_id, Booking.status == "held", Booking.hold_expires_at <= now,
            ~someone_waiting_for(session_id)).order_by(Booking.id))).all()
    return [LapsedHold(*row) for row in rows]


async def session_row_at(session: AsyncSession, session_id: int, now: datetime, *,
                         lock: bool = False) -> dict[str, Any] | None:
    """The session's row with its holds lapsed at `now` (`lapsed`: what slots.SessionSlots.of counts free)."""
    row = await session_row(session, session_id, lock=lock)
    if row is not None:
        row["lapsed"] = await lapsed_holds(session, session_id, now)
    return row


async def lapsed_day_holds(session: AsyncSession, resident_id: int, day: date, now: datetime) -> list[Booking]:
    """The resident's holds of `day` lapsed at `now`: they hold nothing, whether or not the sweeper has run."""
    return list((await session.execute(select(Booking).where(
        Booking.resident_id == resident_id, Booking.service_date == day, Booking.status == "held",
        Booking.hold_expires_at <= now).order_by(Booking.id))).scalars().all())

