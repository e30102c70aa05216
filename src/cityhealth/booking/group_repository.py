"""The group commit's statements: each serves a whole batch of one session's booking attempts.

On PostgreSQL a batch costs a fixed number of round trips, whatever its size: the statements take arrays
(`= ANY`, `unnest`), so their text does not change with the batch and asyncpg prepares each once per
connection, and steps that may share a statement do (the writes are one statement of data-modifying
CTEs). A step that must see what an earlier one waited for (a lock) is a statement of its own: a
PostgreSQL statement reads from the snapshot taken when it started. SQLite runs in-process, where a
statement costs no round trip: there each step is the plain statements, mostly repository.py's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Integer, String, Table, any_, bindparam, delete, func, select, text, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from cityhealth.booking import idempotency, repository
from cityhealth.booking.idempotency import IdempotencyContext
from cityhealth.booking.models import (
    ACTIVE_STATUSES,
    CHANNELS,
    Booking,
    BookingSession,
    IdempotencyKey,
    ResidentDay,
    Sanction,
)
from cityhealth.booking.slots import LapsedHold, SessionSlots
from cityhealth.clock import Clock
from cityhealth.db.types import UTCDateTime
from cityhealth.registry.models import Resident

Stored = dict[tuple[str, str], tuple[str, int, str]]  # (subject, key) -> (fingerprint, status, body)


def _is_pg(tx: AsyncSession) -> bool:
    return tx.get_bind().dialect.name == "postgresql"


def _any(column: Any, name: str, element: Any, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name`: an array on PostgreSQL (fixed text), IN on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(element)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _built(name: str, dialect: str, build: Any) -> Any:
    """Build a statement once per dialect: it is on the path of every batch."""
    statement = _STATEMENTS.get((name, dialect))
    if statement is None:
        statement = _STATEMENTS[(name, dialect)] = build(dialect)
    return statement


# --- The session's pool of slots ----------------------------------------------------------------------------


_POOL_COLUMNS: list[Any] = [
    BookingSession.id, BookingSession.status, BookingSession.service_date, BookingSession.starts_at,
    BookingSession.released_at, BookingSession.capacity,
    BookingSession.booked, BookingSession.open_capacity, BookingSession.open_booked, BookingSession.slot_map,
    *(getattr(BookingSession, f"quota_{c}") for c in CHANNELS),
    *(getattr(BookingSession, f"booked_{c}") for c in CHANNELS),
]
# The session's holds lapsed at the batch's moment, "id resident slot channel" each: their slots count as free
# (slots.SessionSlots.of), and the batch that writes expires them (expire_lapsed) - unless someone is waiting
# for the session: then a lapsed hold's slot is the waitlist's, offered in order by the sweeper.
_POOL_SQL = ", ".join(f"s.{column.key}" for column in _POOL_COLUMNS) + (  # noqa: S608 - fixed names, no input
    ", ARRAY(SELECT concat_ws(' ', h.id, h.resident_id, h.slot_no, h.channel) FROM bookings h "
    "WHERE h.session_id = s.id AND h.status = 'held' AND h.hold_expires_at <= CAST(:now AS timestamptz) "
    "AND NOT EXISTS (SELECT 1 FROM booking_waitlist w WHERE w.session_id = s.id AND w.status = 'waiting') "
    "ORDER BY h.id) AS lapsed")


def _pool_of(row: Any, lapsed: Iterable[Any] | None = None) -> SessionSlots:
    """The pool of a session's row; its lapsed holds from the row's `lapsed` (PostgreSQL) or given as rows."""
    items = (item.split(" ") for item in row["lapsed"]) if lapsed is None else lapsed
    return SessionSlots.of({**row, "lapsed": [LapsedHold(int(h[0]), int(h[1]), h[3], int(h[2])) for h in items]})


def _lapsed_statement(dialect: str) -> Any:
    return (select(Booking.id, Booking.resident_id, Booking.slot_no, Booking.channel)
            .where(Booking.session_id == bindparam("session_id"), Booking.status == "held",
                   Booking.hold_expires_at <= bindparam("now", type_=UTCDateTime),
                   ~repository.someone_waiting_for(bindparam("session_id")))
            .order_by(Booking.id))


async def _pool_sqlite(tx: AsyncSession, session_id: int, now: datetime) -> SessionSlots | None:
    row = (await tx.execute(_READ_POOL, {"session_id": session_id})).mappings().first()
    if row is None:
        return None
    lapsed = (await tx.execute(_built("lapsed", "sqlite", _lapsed_statement),
                               {"session_id": session_id, "now": now})).all()
    return _pool_of(row, lapsed)


# --- Step 1: the batch lock, then the Idempotency-Keys' locks ----------------------------------------------

_LOCK_BATCH = text("SELECT pg_advisory_xact_lock(CAST(:batch AS bigint))")
_TRY_LOCK_KEYS = text("SELECT pg_try_advisory_xact_lock(k.key) FROM unnest(CAST(:keys AS bigint[])) "
                      "WITH ORDINALITY AS k(key, n) ORDER BY k.n")


def batch_lock_key(session_id: int) -> int:
    """The advisory lock that serialises one session's batches across processes (a signed 64-bit number)."""
    digest = hashlib.sha256(f"booking-batch\0{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_batch(tx: AsyncSession, session_id: int) -> None:
    """PostgreSQL: wait for the session's batch lock (SQLite: BEGIN IMMEDIATE serialises every writer).

    With one batch of a session at a time across processes, a batch's plain read of the session is not
    overtaken by another process's batch: the slots it counts on are there when it locks the row, so it
    reads no resident's data for an attempt that cannot be booked.
    """
    if _is_pg(tx):
        await tx.execute(_LOCK_BATCH, {"batch": batch_lock_key(session_id)})


async def try_lock_keys(tx: AsyncSession, contexts: list[IdempotencyContext]) -> list[bool]:
    """PostgreSQL: take each key's advisory lock, False where another process runs a request with it."""
    if not _is_pg(tx):
        return [True] * len(contexts)  # SQLite writers are serialised; the in-process claim is the whole story
    rows = (await tx.execute(_TRY_LOCK_KEYS, {"keys": [c.advisory_key for c in contexts]})).all()
    return [bool(row[0]) for row in rows]


# --- Step 2: stored results and a plain read of the session -------------------------------------------------

_STORED_AND_POOL_PG = text(
    f"SELECT {_POOL_SQL}, i.subject, i.key, i.fingerprint, i.response_status, i.response_body "  # noqa: S608
    "FROM booking_sessions s LEFT JOIN (unnest(CAST(:subjects AS text[]), CAST(:keys AS text[])) AS k(subject, key) "
    "JOIN booking_idempotency_keys i ON i.subject = k.subject AND i.key = k.key) ON true WHERE s.id = :session_id")
_READ_POOL = select(*_POOL_COLUMNS).where(BookingSession.id == bindparam("session_id"))


async def stored_and_pool(tx: AsyncSession, session_id: int, contexts: list[IdempotencyContext],
                          now: datetime) -> tuple[SessionSlots | None, Stored]:
    """The keys' stored results (committed before their locks were taken) and the session, unlocked, its
    holds lapsed at `now` counted free."""
    if _is_pg(tx):
        rows = (await tx.execute(_STORED_AND_POOL_PG, {
            "session_id": session_id, "now": now, "subjects": [c.subject for c in contexts],
            "keys": [c.key for c in contexts]})).mappings().all()
        stored = {(r["subject"], r["key"]): (r["fingerprint"], int(r["response_status"]), r["response_body"])
                  for r in rows if r["subject"] is not None}
        return (_pool_of(rows[0]) if rows else None), stored
    stored = {}
    if contexts:
        result = await tx.execute(
            select(IdempotencyKey.subject, IdempotencyKey.key, IdempotencyKey.fingerprint,
                   IdempotencyKey.response_status, IdempotencyKey.response_body)
            .where(tuple_(IdempotencyKey.subject, IdempotencyKey.key).in_([(c.subject, c.key) for c in contexts])))
        stored = {(row[0], row[1]): (row[2], int(row[3]), row[4]) for row in result.all()}
    return await _pool_sqlite(tx, session_id, now), stored


# --- Step 3: residents, bans, and the residents' day locks --------------------------------------------------


@dataclass(frozen=True)
class FoundResident:
    id: int
    id_number_hash: str
    banned_until: datetime | None


def _residents_statement(dialect: str) -> Any:
    now = bindparam("now", type_=UTCDateTime)
    ban = (select(func.max(Sanction.ends_at))
           .where(Sanction.resident_id == Resident.id, Sanction.lifted_at.is_(None),
                  Sanction.starts_at <= now, Sanction.ends_at > now)
           .correlate(Resident).scalar_subquery())
    columns = (Resident.id, Resident.id_number_hash, ban)
    # Two index lookups rather than one OR, which would scan the whole index of residents.
    return union_all(
        select(*columns).where(Resident.is_active.is_(True), _any(Resident.id, "ids", Integer, dialect)),
        select(*columns).where(Resident.is_active.is_(True),
                               _any(Resident.id_number_hash, "hashes", String, dialect)))


_BAN_SQL = ("(SELECT max(b.ends_at) FROM booking_sanctions b WHERE b.resident_id = r.id AND b.lifted_at IS NULL "
            "AND b.starts_at <= CAST(:now AS timestamptz) AND b.ends_at > CAST(:now AS timestamptz))")
# Residents found and not banned get their day row locked in the same statement, in id order (every batch
# locks in id order, so two batches cannot deadlock on them). `xmax = 0`: the row was inserted, not updated.
_IDENTIFY_PG = text(
    f"WITH found AS (SELECT r.id, r.id_number_hash, {_BAN_SQL} AS banned_until FROM residents r "  # noqa: S608
    "WHERE r.is_active AND r.id = ANY(CAST(:ids AS int[])) "
    f"UNION SELECT r.id, r.id_number_hash, {_BAN_SQL} FROM residents r "
    "WHERE r.is_active AND r.id_number_hash = ANY(CAST(:hashes AS text[]))), "
    "locked AS (INSERT INTO booking_resident_days (resident_id, service_date, version) "
    "SELECT id, CAST(:day AS date), 1 FROM found WHERE banned_until IS NULL ORDER BY id "
    "ON CONFLICT (resident_id, service_date) DO UPDATE SET version = booking_resident_days.version + 1 "
    "RETURNING resident_id, xmax = 0 AS inserted) "
    "SELECT f.id, f.id_number_hash, f.banned_until, l.inserted FROM found f LEFT JOIN locked l ON l.resident_id = f.id")


async def identify(tx: AsyncSession, now: datetime, ids: Iterable[int], hashes: Iterable[str],
                   day: date) -> tuple[list[FoundResident], set[int]]:
    """The active residents with these ids or ID-number hashes, with any ban in force; the day rows of
    those not banned locked. Also returns the residents whose day row this created (see drop_resident_days)."""
    ids, hashes = sorted(set(ids)), sorted(set(hashes))
    if not ids and not hashes:
        return [], set()
    if _is_pg(tx):
        rows = (await tx.execute(_IDENTIFY_PG, {"now": now, "ids": ids, "hashes": hashes, "day": day})).all()
        found = [FoundResident(int(r[0]), r[1], r[2]) for r in rows]
        return found, {int(r[0]) for r in rows if r[3]}
    result = await tx.execute(_built("residents", "sqlite", _residents_statement),
                              {"now": now, "ids": ids, "hashes": hashes})
    found = []
    for resident_id, id_number_hash, banned_until in result.all():
        if isinstance(banned_until, str):  # SQLite aggregates lose the column type
            banned_until = UTCDateTime().process_result_value(banned_until, tx.get_bind().dialect)
        found.append(FoundResident(int(resident_id), id_number_hash, banned_until))
    eligible = sorted({f.id for f in found if f.banned_until is None})
    existing = set((await tx.execute(select(ResidentDay.resident_id).where(
        ResidentDay.service_date == day, ResidentDay.resident_id.in_(eligible)))).scalars())
    for resident_id in eligible:
        await repository.lock_resident_day(tx, resident_id, day)
    return found, set(eligible) - existing


def _drop_days_statement(dialect: str) -> Any:
    table = cast(Table, ResidentDay.__table__)
    return delete(table).where(table.c.service_date == bindparam("day"),
                               _any(table.c.resident_id, "residents", Integer, dialect))


async def drop_resident_days(tx: AsyncSession, resident_ids: Iterable[int], day: date) -> None:
    """Remove day rows this batch created for residents it booked nothing for ("nothing written")."""
    residents = sorted(set(resident_ids))
    if residents:
        dialect = tx.get_bind().dialect.name
        await tx.execute(_built("drop_days", dialect, _drop_days_statement), {"day": day, "residents": residents})


def _day_bookings_statement(dialect: str) -> Any:
    # `lapsed`: a hold of another session lapsed at the batch's moment (the session's own are the pool's).
    now, session_id = bindparam("now", type_=UTCDateTime), bindparam("session_id", type_=Integer)
    lapsed = repository.lapsed_hold(now) & (Booking.session_id != session_id)
    return select(Booking.id, Booking.resident_id, Booking.department_id, Booking.starts_at, Booking.ends_at,
                  lapsed.label("lapsed")).where(
        _any(Booking.resident_id, "residents", Integer, dialect), Booking.service_date == bindparam("day"),
        Booking.status.in_(ACTIVE_STATUSES))


# --- Step 4: the residents' bookings of the day, the session's row lock, booking ids ------------------------

# The bookings are read from this statement's snapshot, taken after the previous one locked the residents'
# days: no booking of theirs can commit meanwhile. The session's row is returned as it is once locked. A hold
# of another session lapsed at the batch's moment holds nothing (the clock decides, not the sweeper): it is
# returned marked, not counted, and expired if the batch books its resident.
_DAY_AND_POOL_PG = text(
    f"SELECT p.*, d.id AS day_id, d.resident_id AS day_resident_id, d.department_id AS day_department_id, "  # noqa: S608
    "d.starts_at AS day_starts_at, d.ends_at AS day_ends_at, (d.status = 'held' AND d.session_id <> p.id "
    "AND d.hold_expires_at <= CAST(:now AS timestamptz)) AS day_lapsed "
    f"FROM (SELECT {_POOL_SQL}, ARRAY(SELECT nextval(pg_get_serial_sequence('bookings', 'id')) "
    "FROM generate_series(1, CAST(:reserve AS int))) AS booking_ids "
    "FROM booking_sessions s WHERE s.id = :session_id FOR UPDATE) p "
    "LEFT JOIN bookings d ON d.resident_id = ANY(CAST(:residents AS int[])) AND d.service_date = CAST(:day AS date) "
    f"AND d.status IN ({', '.join(repr(status) for status in ACTIVE_STATUSES)})")


@dataclass(frozen=True)
class LockedPool:
    pool: SessionSlots  # its lapsed holds (`pool.lapsed`) to be expired by the batch that writes
    booked_read: int  # the row's count as read (what the conditional write of the counters checks)
    booking_ids: list[int]  # reserved for the batch's bookings (the unused ones leave a gap, as rollbacks do)
    day_bookings: dict[int, list[repository.DayBooking]]  # every resident asked for has an entry
    lapsed_elsewhere: dict[int, list[int]]  # resident -> their holds of the day lapsed in other sessions

    def lapsed_elsewhere_of(self, residents: Iterable[int]) -> list[int]:
        """The holds lapsed elsewhere of these residents: a booking of theirs expires them (the unique index
        on resident, department and day would set one against it)."""
        return [hold for resident in residents for hold in self.lapsed_elsewhere.get(resident, ())]


async def lock_day_and_pool(tx: AsyncSession, session_id: int, residents: Iterable[int], day: date,
                            reserve: int, now: datetime) -> LockedPool | None:
    """The residents' active bookings of the day (under their day locks), the session's row locked until
    the commit (its holds lapsed at `now` counted free, and not counted in the day's bookings), and `reserve`
    new booking ids (so the responses, which carry them, are ready before the statement that writes)."""
    resident_ids = sorted(set(residents))
    day_bookings: dict[int, list[repository.DayBooking]] = {resident_id: [] for resident_id in resident_ids}
    lapsed_elsewhere: dict[int, list[int]] = {}
    if _is_pg(tx):
        rows = (await tx.execute(_DAY_AND_POOL_PG, {"session_id": session_id, "reserve": reserve, "now": now,
                                                    "residents": resident_ids, "day": day})).mappings().all()
        if not rows:
            return None
        for row in rows:
            if row["day_lapsed"]:
                lapsed_elsewhere.setdefault(row["day_resident_id"], []).append(row["day_id"])
            elif row["day_id"] is not None:
                day_bookings[row["day_resident_id"]].append(repository.DayBooking(
                    row["day_id"], row["day_department_id"], row["day_starts_at"], row["day_ends_at"]))
        pool, booked_read, booking_ids = _pool_of(rows[0]), rows[0]["booked"], [int(i) for i in rows[0]["booking_ids"]]
    else:
        # SQLite: BEGIN IMMEDIATE holds the database's write lock already; the next rowids are max + 1 …
        if resident_ids:
            result = await tx.execute(_built("day_bookings", "sqlite", _day_bookings_statement),
                                      {"residents": resident_ids, "day": day, "now": now, "session_id": session_id})
            for booking_id, resident_id, department_id, starts_at, ends_at, lapsed_there in result.all():
                if lapsed_there:
                    lapsed_elsewhere.setdefault(resident_id, []).append(booking_id)
                else:
                    day_bookings[resident_id].append(
                        repository.DayBooking(booking_id, department_id, starts_at, ends_at))
        found = await _pool_sqlite(tx, session_id, now)
        if found is None:
            return None
        last = int((await tx.execute(select(func.coalesce(func.max(Booking.id), 0)))).scalar_one())
        pool, booked_read = found, found.booked + len(found.lapsed)
        booking_ids = list(range(last + 1, last + 1 + reserve))
    lapsed = {hold.booking_id for hold in pool.lapsed}
    if lapsed:
        day_bookings = {r: [b for b in found_day if b.id not in lapsed] for r, found_day in day_bookings.items()}
    return LockedPool(pool, booked_read, booking_ids, day_bookings, lapsed_elsewhere)


async def expire_lapsed(tx: AsyncSession, holds: list[LapsedHold], now: datetime) -> None:
    """Expire the lapsed holds whose slots the batch counted free (before it writes: a new booking may take
    one of their slots); a hold confirmed or tidied meanwhile fails the batch, which is then decided again."""
    ids = sorted(hold.booking_id for hold in holds)
    if not ids:
        return
    expired = await tx.execute(update(Booking).where(Booking.id.in_(ids), Booking.status == "held").values(
        status="expired", ended_at=now, end_reason="hold_expired", updated_at=now))
    if expired.rowcount != len(ids):  # type: ignore[attr-defined]
        raise RuntimeError("a lapsed hold changed under the session's row lock")
    for booking_id in ids:
        await repository.waitlist_offer_expired(tx, booking_id, now)


# --- Step 5: everything the batch writes --------------------------------------------------------------------

_PER_BOOKING = {"id": "int", "slot_no": "int", "estimated_at": "timestamptz", "resident_id": "int",
                "channel": "text", "client_app_id": "int", "status": "text", "hold_expires_at": "timestamptz",
                "booked_at": "timestamptz", "created_by": "text"}
_PER_SESSION = {"session_id": "int", "organization_id": "int", "department_id": "int", "service_date": "date",
                "starts_at": "timestamptz", "ends_at": "timestamptz"}
_SESSION_COUNTERS = ["booked", "open_booked", *(f"booked_{c}" for c in CHANNELS)]
# One statement: data-modifying CTEs all run to completion, whether the final SELECT reads them or not.
# Every name below comes from the constants above; every value is a bound parameter.
_SET_COUNTERS = ", ".join(f"{name} = CAST(:{name} AS int)" for name in _SESSION_COUNTERS)
_WRITE_PG = text(
    f"WITH s AS (UPDATE booking_sessions SET {_SET_COUNTERS}, "  # noqa: S608
    "slot_map = CAST(:slot_map AS text), last_slot_no = CAST(:last_slot_no AS int), "
    "updated_at = CAST(:now AS timestamptz) "
    "WHERE id = CAST(:session_id AS int) AND booked = CAST(:booked_before AS int) RETURNING id), "
    f"b AS (INSERT INTO bookings ({', '.join(_PER_SESSION)}, {', '.join(_PER_BOOKING)}, created_at, updated_at) "
    f"SELECT {', '.join(f'CAST(:{name} AS {kind})' for name, kind in _PER_SESSION.items())}, "
    f"{', '.join(f'u.{name}' for name in _PER_BOOKING)}, CAST(:now AS timestamptz), CAST(:now AS timestamptz) "
    f"FROM unnest({', '.join(f'CAST(:b_{name} AS {kind}[])' for name, kind in _PER_BOOKING.items())}) "
    f"AS u({', '.join(_PER_BOOKING)}) RETURNING id), "
    "c AS (INSERT INTO booking_stats_monthly (organization_id, month, channel, client_app_id, bookings) "
    "SELECT * FROM unnest(CAST(:c_organizations AS int[]), CAST(:c_months AS text[]), CAST(:c_channels AS text[]), "
    "CAST(:c_apps AS int[]), CAST(:c_counts AS bigint[])) "
    "ON CONFLICT (organization_id, month, channel, client_app_id) "
    "DO UPDATE SET bookings = booking_stats_monthly.bookings + excluded.bookings RETURNING 1), "
    "k AS (INSERT INTO booking_idempotency_keys (subject, key, fingerprint, response_status, response_body, "
    "created_at, expires_at) SELECT u.subject, u.key, u.fingerprint, 201, u.body, CAST(:now AS timestamptz), "
    "CAST(:expires_at AS timestamptz) FROM unnest(CAST(:k_subjects AS text[]), CAST(:k_keys AS text[]), "
    "CAST(:k_fingerprints AS text[]), CAST(:k_bodies AS text[])) AS u(subject, key, fingerprint, body) RETURNING 1) "
    "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM b)")


@dataclass(frozen=True)
class BatchWrites:
    """What a batch writes: the session's new counters, the bookings (with their ids), the counters
    keyed (hospital, month, channel, app or 0), and each booking's response under its key."""

    pool: SessionSlots
    booked_before: int
    last_slot_no: int
    bookings: list[dict[str, Any]]
    counts: dict[tuple[int, str, str, int], int]
    responses: list[tuple[IdempotencyContext, str]]


async def write_batch(tx: AsyncSession, clock: Clock, writes: BatchWrites) -> None:
    """Write the batch (the session row must be locked by lock_day_and_pool; its CHECKs and the bookings' unique
    indexes are the backstop: any violation fails the whole statement)."""
    now, pool = clock.now(), writes.pool
    counters = {"booked": pool.booked, "open_booked": pool.open_booked,
                **{f"booked_{c}": pool.booked_by[c] for c in CHANNELS}}
    keys = sorted(writes.counts)  # counter rows locked in key order: two batches cannot deadlock on them
    if not _is_pg(tx):
        await _write_batch_sqlite(tx, clock, writes, keys)
        return
    first = writes.bookings[0]
    written = (await tx.execute(_WRITE_PG, {
        "now": now, "expires_at": now + idempotency.RETENTION, "session_id": pool.session_id,
        "booked_before": writes.booked_before, "slot_map": pool.slot_map, "last_slot_no": writes.last_slot_no,
        **counters, **{name: first[name] for name in _PER_SESSION if name != "session_id"},
        **{f"b_{name}": [b[name] for b in writes.bookings] for name in _PER_BOOKING},
        "c_organizations": [k[0] for k in keys], "c_months": [k[1] for k in keys], "c_channels": [k[2] for k in keys],
        "c_apps": [k[3] for k in keys], "c_counts": [writes.counts[k] for k in keys],
        "k_subjects": [c.subject for c, _ in writes.responses], "k_keys": [c.key for c, _ in writes.responses],
        "k_fingerprints": [c.fingerprint for c, _ in writes.responses], "k_bodies": [b for _, b in writes.responses],
    })).one()
    if tuple(written) != (1, len(writes.bookings)):
        raise RuntimeError(f"session {pool.session_id} changed under its row lock")


async def _write_batch_sqlite(tx: AsyncSession, clock: Clock, writes: BatchWrites,
                              keys: list[tuple[int, str, str, int]]) -> None:
    await repository.write_slots(tx, writes.pool, booked_before=writes.booked_before, now=clock.now(),
                                 last_slot_no=writes.last_slot_no)
    for booking in writes.bookings:
        await repository.insert_booking(tx, booking)
    for organization_id, month, channel, app_id in keys:
        for _ in range(writes.counts[(organization_id, month, channel, app_id)]):
            await repository.count_booking(tx, organization_id, month, channel, app_id or None)
    for context, body in writes.responses:
        await idempotency.store(tx, clock, context, 201, body)


async def warm_up(tx: AsyncSession) -> None:
    """PostgreSQL: run every statement of the batch once, touching no row, so that this connection has
    them prepared (and SQLAlchemy compiled) before the first release; the caller rolls back."""
    none: list[Any] = []
    day = date(2000, 1, 1)
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    await tx.execute(_LOCK_BATCH, {"batch": batch_lock_key(0)})
    await tx.execute(_TRY_LOCK_KEYS, {"keys": none})
    await tx.execute(_STORED_AND_POOL_PG, {"session_id": 0, "now": moment, "subjects": none, "keys": none})
    await tx.execute(_IDENTIFY_PG, {"now": moment, "ids": none, "hashes": none, "day": day})
    await tx.execute(_built("drop_days", "postgresql", _drop_days_statement), {"residents": none, "day": day})
    await tx.execute(_DAY_AND_POOL_PG, {"session_id": 0, "reserve": 0, "now": moment, "residents": none, "day": day})
    await tx.execute(_WRITE_PG, {
        "now": moment, "expires_at": moment, "session_id": 0, "booked_before": 0, "slot_map": "", "last_slot_no": 0,
        **dict.fromkeys(_SESSION_COUNTERS, 0), "organization_id": 0, "department_id": 0, "service_date": day,
        "starts_at": moment, "ends_at": moment, **{f"b_{name}": none for name in _PER_BOOKING},
        **{f"c_{name}": none for name in ("organizations", "months", "channels", "apps", "counts")},
        **{f"k_{name}": none for name in ("subjects", "keys", "fingerprints", "bodies")}})
