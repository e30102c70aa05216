"""The published feeds' and the availability search's queries: sessions with their hospital's release rules.

`feed_sessions` and `feed_places` are the slot feed's reads (released sessions with their policy; their
hospitals, departments and practitioners); `feed_state` is its validator's one aggregate read, which
answers a conditional request without reading a single session row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, cast

from sqlalchemy import Integer, Table, any_, bindparam, case, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from cityhealth.booking.models import Booking, BookingSession, ReleasePolicy, WaitlistEntry
from cityhealth.booking.repository import someone_waiting_for
from cityhealth.registry.models import ClientApp, Department, Organization, Practitioner

_SESSIONS = cast(Table, BookingSession.__table__)
_POLICY_COLUMNS = [column.label(f"policy_{column.key}") for column in cast(Table, ReleasePolicy.__table__).c
                   if column.key != "organization_id"]


def _lapsed(aggregate: str, now: Any, *among: Any) -> Any:
    """Per session of the days, its holds lapsed at `now` that count free (none while someone waits for it):
    `lapsed_channels` (their channels, space-separated), `lapsed_at` (the latest expiry) and `waiters_left_at`
    (the last change to the session's waitlist: its slots count free only once nobody waits, so the last
    waiter's leaving, or being offered or skipped, freed them then, with no write to the session). The slots a
    booking would find free before the sweeper has run (slots.SessionSlots.of). Few rows: the sweeper tidies
    them within seconds, and ix_bookings_status_hold_expires_at finds them, so one join costs next to nothing."""
    left_at = (select(func.max(WaitlistEntry.updated_at)).where(WaitlistEntry.session_id == Booking.session_id)
               .correlate(Booking).scalar_subquery())
    return (select(Booking.session_id.label("session_id"),
                   getattr(func, aggregate)(Booking.channel, literal_column("' '")).label("lapsed_channels"),
                   func.max(Booking.hold_expires_at).label("lapsed_at"), left_at.label("waiters_left_at"))
            .where(Booking.status == literal_column("'held'"), Booking.hold_expires_at <= now, *among,
                   ~someone_waiting_for(Booking.session_id))
            .group_by(Booking.session_id).subquery("lapsed"))


def _sessions_with_policies(connection: AsyncConnection, now: datetime, among: Any, *where: Any) -> Any:
    """The sessions `where` says, each with its hospital's policy and its holds lapsed at `now` (`among`: which
    bookings may be among them, so the lapsed holds are found by an index, not by a scan)."""
    aggregate = "string_agg" if connection.dialect.name == "postgresql" else "group_concat"
    lapsed = _lapsed(aggregate, bindparam("now", now, type_=_SESSIONS.c.released_at.type), among)
    return (select(*_SESSIONS.c, *_POLICY_COLUMNS, lapsed.c.lapsed_channels, lapsed.c.lapsed_at,
                   lapsed.c.waiters_left_at)
            .select_from(_SESSIONS).outerjoin(lapsed, lapsed.c.session_id == _SESSIONS.c.id)
            .outerjoin(ReleasePolicy, ReleasePolicy.organization_id == _SESSIONS.c.organization_id).where(*where))


async def sessions_with_policies(connection: AsyncConnection, first: date, last: date, *,
                                 organization_id: int | None, department_id: int | None,
                                 practitioner_id: int | None, now: datetime,
                                 limit: int = 1000) -> list[dict[str, Any]]:
    """The sessions of the days matching the filters, in time order, each with its hospital's policy and its
    holds lapsed at `now` (feed_free counts them free)."""
    filters = ((_SESSIONS.c.organization_id, organization_id), (_SESSIONS.c.department_id, department_id),
               (_SESSIONS.c.practitioner_id, practitioner_id))
    statement = _sessions_with_policies(
        connection, now, Booking.service_date.between(first, last), _SESSIONS.c.service_date.between(first, last),
        *(column == value for column, value in filters if value is not None),
    ).order_by(_SESSIONS.c.starts_at, _SESSIONS.c.id).limit(limit)
    return [dict(row) for row in (await connection.execute(statement)).mappings().all()]


async def sessions_by_id(connection: AsyncConnection, session_ids: Sequence[int],
                         now: datetime) -> list[dict[str, Any]]:
    """These sessions (those that exist), as `sessions_with_policies` reads them: what feed_free decides on, in
    one read however many sessions a page shows."""
    ids = sorted(set(session_ids))
    if not ids:
        return []
    statement = _sessions_with_policies(connection, now, Booking.session_id.in_(ids), _SESSIONS.c.id.in_(ids))
    return [dict(row) for row in (await connection.execute(statement)).mappings().all()]


async def sessions_of_day(connection: AsyncConnection, day: date, organization_ids: Sequence[int],
                          now: datetime) -> list[dict[str, Any]]:
    """The sessions of `day` at these organizations, as `sessions_with_policies` reads them, each with its
    department's name (`department_name`), in time order: the medical e-map's free slots of today."""
    ids = sorted(set(organization_ids))
    if not ids:
        return []
    statement = (_sessions_with_policies(connection, now, Booking.service_date == day,
                                         _SESSIONS.c.service_date == day, _SESSIONS.c.organization_id.in_(ids))
                 .join(Department, Department.id == _SESSIONS.c.department_id)
                 .add_columns(Department.local_name.label("department_name"))
                 .order_by(_SESSIONS.c.starts_at, _SESSIONS.c.id))
    return [dict(row) for row in (await connection.execute(statement)).mappings().all()]


async def app_channels(connection: AsyncConnection, app_id: int) -> tuple[str | None, bool | None, str | None]:
    """(channel, is active, further channels) of a client app; all None when there is no such app."""
    row = (await connection.execute(select(ClientApp.channel, ClientApp.is_active, ClientApp.other_channels)
                                    .where(ClientApp.id == app_id))).first()
    return (row[0], row[1], row[2]) if row is not None else (None, None, None)


_FEED_COLUMNS = [
    _SESSIONS.c.id, _SESSIONS.c.organization_id, _SESSIONS.c.department_id, _SESSIONS.c.practitioner_id,
    _SESSIONS.c.service_date, _SESSIONS.c.starts_at, _SESSIONS.c.ends_at, _SESSIONS.c.released_at,
    _SESSIONS.c.status, _SESSIONS.c.capacity, _SESSIONS.c.booked, _SESSIONS.c.open_capacity,
    _SESSIONS.c.open_booked, _SESSIONS.c.updated_at,
    *(c for c in _SESSIONS.c if c.key.startswith(("quota_", "booked_"))),
]


# PostgreSQL's row version: the transaction that wrote the row's current version. A row read again with the same
# version is the same row, so the feed reads the versions of its window's sessions and fetches again only the
# rows whose version differs from those it holds. The version takes in the row's lapsed holds, which change
# with no write to the row. (A transaction id recurs only after four billion transactions.)
_NO_VERSION: Any = literal_column("NULL").label("version")  # SQLite: no row versions; the feed reads every row


def _feed_window(columns: Any, aggregate: str, *, versioned: bool, rows: bool = True) -> Any:
    """The columns (`rows`: and the row's holds lapsed at `now`) and the row's version, of the window's released
    sessions."""
    lapsed = _lapsed(aggregate, bindparam("now", type_=_SESSIONS.c.released_at.type),
                     Booking.service_date.between(bindparam("first"), bindparam("last")))
    version = func.concat_ws(" ", literal_column("booking_sessions.xmin::text"), lapsed.c.lapsed_channels,
                             func.extract("epoch", lapsed.c.lapsed_at),
                             func.extract("epoch", lapsed.c.waiters_left_at)).label("version")
    lapsed_columns = (lapsed.c.lapsed_channels, lapsed.c.lapsed_at, lapsed.c.waiters_left_at) if rows else ()
    return (select(*columns, *lapsed_columns, version if versioned else _NO_VERSION)
            .select_from(_SESSIONS).outerjoin(lapsed, lapsed.c.session_id == _SESSIONS.c.id)
            .where(_SESSIONS.c.service_date.between(bindparam("first"), bindparam("last")),
                   _SESSIONS.c.released_at <= bindparam("now", type_=_SESSIONS.c.released_at.type))
            .order_by(_SESSIONS.c.id))


def _pg(statement: Any) -> Any:
    return statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]


_FEED_SESSIONS = _feed_window(_FEED_COLUMNS, "group_concat", versioned=False)  # SQLite
_FEED_SESSIONS_PG = _pg(_feed_window(_FEED_COLUMNS, "string_agg", versioned=True))
_FEED_SESSIONS_BY_ID_PG = _pg(_feed_window(_FEED_COLUMNS, "string_agg", versioned=True).where(
    _SESSIONS.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))))
# Two arrays in one row, not ten thousand rows: asyncpg decodes an array without making a record per element.
_WINDOW_VERSIONS = _feed_window([_SESSIONS.c.id], "string_agg", versioned=True, rows=False).order_by(None).subquery()
_FEED_VERSIONS_PG = _pg(select(
    func.array_agg(aggregate_order_by(_WINDOW_VERSIONS.c.id, _WINDOW_VERSIONS.c.id)),
    func.array_agg(aggregate_order_by(_WINDOW_VERSIONS.c.version, _WINDOW_VERSIONS.c.id))))


async def feed_sessions(connection: AsyncConnection, first: date, last: date, now: datetime,
                        ids: Sequence[int] | None = None) -> Sequence[Any]:
    """The sessions of the days released by `now` (`ids`: only these, on PostgreSQL), in id order (mappings),
    with their holds lapsed at `now` and their `version` (None on SQLite).

    On PostgreSQL straight through asyncpg: ten thousand rows cost the ORM's result processing several times
    what the database spends on them (asyncpg gives aware datetimes itself)."""
    values: dict[str, Any] = {"first": first, "last": last, "now": now}
    if ids is not None:
        if connection.dialect.name != "postgresql":
            raise RuntimeError("sessions by id are read only where rows have versions (PostgreSQL)")
        values["ids"] = list(ids)
    compiled = _FEED_SESSIONS_PG if ids is None else _FEED_SESSIONS_BY_ID_PG
    rows: Sequence[Any] = await _fetch(connection, _FEED_SESSIONS, compiled, values, one=False)
    return rows


async def feed_versions(connection: AsyncConnection, first: date, last: date, now: datetime) -> dict[int, str] | None:
    """The version of each session of the days released by `now`, in id order; None where rows
    have no versions (SQLite: read them all)."""
    if connection.dialect.name != "postgresql":
        return None
    ids, versions = await _fetch(connection, None, _FEED_VERSIONS_PG, {"first": first, "last": last, "now": now},
                                 one=True)
    return dict(zip(ids or (), versions or (), strict=True))


async def feed_places(connection: AsyncConnection, organization_ids: Iterable[int], department_ids: Iterable[int],
                      practitioner_ids: Iterable[int],
                      ) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """The hospitals (with their policy's `policy_` columns), departments and practitioners, by id."""
    organizations = (await connection.execute(select(
        Organization.id, Organization.name, Organization.code, Organization.address_line, Organization.address_city,
        Organization.address_district, Organization.address_state, Organization.postal_code,
        Organization.booking_phone, Organization.updated_at, *_POLICY_COLUMNS)
        .outerjoin(ReleasePolicy, ReleasePolicy.organization_id == Organization.id)
        .where(Organization.id.in_(set(organization_ids))))).mappings().all()
    departments = (await connection.execute(select(
        Department.id, Department.local_name, Department.subject_code, Department.updated_at)
        .where(Department.id.in_(set(department_ids))))).mappings().all()
    practitioners = (await connection.execute(select(Practitioner.id, Practitioner.name, Practitioner.updated_at)
                                              .where(Practitioner.id.in_(set(practitioner_ids))))).mappings().all()
    return ({r["id"]: r for r in organizations}, {r["id"]: r for r in departments},
            {r["id"]: r for r in practitioners})


@dataclass(frozen=True)
class FeedState:
    """What the feed's content depends on, in one row: any change to it changes one of these."""

    sessions: int
    booked: int | None  # with `open_sessions`: a write at the same instant as the last still shows
    open_sessions: int | None
    sessions_updated: datetime | None
    last_released: datetime | None
    last_started: datetime | None  # the latest start already passed: a session that starts is no longer free
    policies_updated: datetime | None
    cutoff_passed: time | None  # the latest next-day cut-off of any policy already passed today
    organizations_updated: datetime | None
    departments_updated: datetime | None
    practitioners_updated: datetime | None
    lapsed_holds: int  # holds lapsed by now that count free: a hold lapsing changes the feed with no write
    last_lapsed: datetime | None


def _lapsed_in_window(now: Any) -> Any:
    """The holds of the window's released sessions lapsed at `now` and counting free (few: the sweeper tidies
    them within seconds; ix_bookings_status_hold_expires_at finds them)."""
    return (select().select_from(Booking).join(_SESSIONS, _SESSIONS.c.id == Booking.session_id).where(
        Booking.status == literal_column("'held'"), Booking.hold_expires_at <= now,
        Booking.service_date.between(bindparam("first"), bindparam("last")), _SESSIONS.c.released_at <= now,
        ~someone_waiting_for(Booking.session_id)))


def _feed_state_statement() -> Any:
    now = bindparam("now", type_=_SESSIONS.c.released_at.type)
    return select(
        func.count(), func.sum(_SESSIONS.c.booked), func.sum(case((_SESSIONS.c.status == "open", 1), else_=0)),
        func.max(_SESSIONS.c.updated_at), func.max(_SESSIONS.c.released_at),
        func.max(case((_SESSIONS.c.starts_at <= now, _SESSIONS.c.starts_at))),
        select(func.max(ReleasePolicy.updated_at)).scalar_subquery(),
        select(func.max(ReleasePolicy.next_day_cutoff))
        .where(ReleasePolicy.next_day_cutoff <= bindparam("local_time", type_=ReleasePolicy.next_day_cutoff.type))
        .scalar_subquery(),
        select(func.max(Organization.updated_at)).scalar_subquery(),
        select(func.max(Department.updated_at)).scalar_subquery(),
        select(func.max(Practitioner.updated_at)).scalar_subquery(),
        _lapsed_in_window(now).add_columns(func.count()).scalar_subquery(),
        _lapsed_in_window(now).add_columns(func.max(Booking.hold_expires_at)).scalar_subquery(),
    ).where(_SESSIONS.c.service_date.between(bindparam("first"), bindparam("last")), _SESSIONS.c.released_at <= now)


# Built once: a poller's conditional request is this one statement, so it runs as fixed SQL, prepared once per
# connection by asyncpg, without the ORM's per-statement work.
_FEED_STATE = _feed_state_statement()
_FEED_STATE_PG = _pg(_FEED_STATE)


async def _fetch(connection: AsyncConnection, statement: Any, compiled: Any, values: dict[str, Any],
                 *, one: bool) -> Any:
    """Run a fixed statement: on PostgreSQL straight through asyncpg (aware datetimes come back as they are)."""
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        values = {**compiled.params, **values}  # the statement's own literals ('open', 1, 0) are parameters too
        args = [values[name] for name in compiled.positiontup or ()]
        sql = str(compiled)
        return await (driver.fetchrow(sql, *args) if one else driver.fetch(sql, *args))
    result = await connection.execute(statement, values)
    return result.one() if one else result.mappings().all()


async def feed_state(connection: AsyncConnection, first: date, last: date, now: datetime,
                     local_time: time) -> FeedState:
    """The feed's validator inputs in one aggregate read (no session row is fetched)."""
    row = await _fetch(connection, _FEED_STATE, _FEED_STATE_PG,
                       {"first": first, "last": last, "now": now, "local_time": local_time}, one=True)
    return FeedState(*row)
