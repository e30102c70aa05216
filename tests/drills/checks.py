"""What every drill checks afterwards, from the database: the audit chain (through `cityhealth audit verify`),
the collection counters against a recount of the stored records, the booking sessions' slots against their
active bookings, and a digest of every table's rows."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text

from cityhealth.booking.models import ACTIVE_STATUSES, CHANNELS, Booking, BookingSession
from cityhealth.clock import business_date
from cityhealth.collection.models import DailyCount, Record
from cityhealth.db.engine import Database


@dataclass(frozen=True)
class Counts:
    """Records stored and the counters' sums, and the (unit, form, day) keys where counter and recount differ."""

    records: int
    counted: int
    mismatched: tuple[tuple[int, str, str, int, int], ...]

    @property
    def ok(self) -> bool:
        return not self.mismatched


@dataclass(frozen=True)
class Seats:
    """Active bookings in all; the bookings beyond their session's capacity; and, per session whose counters do
    not equal a recount of its active bookings, the names of those counters."""

    active: int
    oversold: int
    mismatched: dict[int, tuple[str, ...]]

    @property
    def miscounted(self) -> int:
        """The sessions with a counter that differs from its recount."""
        return len(self.mismatched)


def cli(database_url: str, *arguments: str, var_dir: Path | None = None,
        extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cityhealth ARGUMENTS` against the database of `database_url`, in a var directory of its own."""
    with tempfile.TemporaryDirectory(prefix="drill-var-") as scratch:
        directory = var_dir or Path(scratch)
        environment = {**os.environ, "CITYHEALTH_DATABASE_URL": database_url, "CITYHEALTH_VAR_DIR": str(directory),
                       **(extra or {})}
        return subprocess.run([sys.executable, "-m", "cityhealth.cli", *arguments],  # noqa: S603 - our own CLI
                              capture_output=True, text=True, env=environment, check=False)


def audit_verifies(database_url: str, var_dir: Path | None = None) -> tuple[bool, str]:
    """`cityhealth audit verify` on the database: whether it passed, and what it printed."""
    done = cli(database_url, "audit", "verify", var_dir=var_dir)
    lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""]
    return done.returncode == 0, lines[-1]


async def count_rows(database: Database, model: type[object]) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def recount(database: Database) -> Counts:
    """Each unit's records stored per form and first business day, against the accepted counter of that day."""
    async with database.transaction() as session:
        stored = Counter(
            (org, form, business_date(first).isoformat())
            for org, form, first in await session.execute(
                select(Record.organization_id, Record.form, Record.first_received_at))
        )
        counted = {
            (org, form, day.isoformat()): accepted
            for org, form, day, accepted in await session.execute(
                select(DailyCount.organization_id, DailyCount.form, DailyCount.day, DailyCount.accepted))
        }
    mismatched = tuple(sorted(
        (*key, stored.get(key, 0), counted.get(key, 0))
        for key in set(stored) | set(counted)
        if stored.get(key, 0) != counted.get(key, 0)
    ))
    return Counts(sum(stored.values()), sum(counted.values()), mismatched)


async def seats(database: Database, session_ids: Collection[int] | None = None) -> Seats:
    """Every booking session's (or the given ones') counters — slots taken in all, per channel and from the open
    pool, and the slot map — against a recount of its active bookings: a slot taken or given back without its
    counter, or a session sold beyond its capacity."""
    sessions = select(BookingSession)
    active = select(Booking.session_id, Booking.channel, Booking.slot_no).where(Booking.status.in_(ACTIVE_STATUSES))
    if session_ids is not None:
        sessions = sessions.where(BookingSession.id.in_(session_ids))
        active = active.where(Booking.session_id.in_(session_ids))
    async with database.transaction() as session:
        rows = (await session.execute(sessions)).scalars().all()
        taken: dict[int, list[tuple[str, int]]] = {}
        for session_id, channel, slot_no in await session.execute(active):
            taken.setdefault(session_id, []).append((channel, slot_no))
    if session_ids is not None and (missing := set(session_ids) - {row.id for row in rows}):
        raise LookupError(f"no booking session {sorted(missing)}")
    mismatched, oversold = {}, 0
    for row in rows:
        bookings = taken.get(row.id, [])
        oversold += max(0, len(bookings) - row.capacity)
        channels = Counter(channel for channel, _ in bookings)
        slots = {slot_no for _, slot_no in bookings}
        recounted: dict[str, object] = {
            "booked": len(bookings), **{f"booked_{channel}": channels[channel] for channel in CHANNELS},
            "open_booked": sum(n for channel, n in channels.items() if getattr(row, f"quota_{channel}") is None),
            "slot_map": "".join("1" if slot_no in slots else "0" for slot_no in range(1, row.capacity + 1)),
        }
        if differing := tuple(name for name, value in recounted.items() if getattr(row, name) != value):
            mismatched[row.id] = differing
    return Seats(active=sum(map(len, taken.values())), oversold=oversold, mismatched=mismatched)


async def settled(database_url: str) -> tuple[int, bool, bool]:
    """After a load has ended: the records stored, whether the counters equal a recount, whether the chain verifies."""
    checker = Database(database_url)
    try:
        stored, counts = await count_rows(checker, Record), await recount(checker)
    finally:
        await checker.dispose()
    return stored, counts.ok, audit_verifies(database_url)[0]


async def table_digests(database: Database) -> dict[str, tuple[int, str]]:
    """Every table's row count and an md5 of its rows in a fixed order (PostgreSQL): equal digests, equal data."""
    async with database.transaction() as session:
        names = (await session.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"))).scalars().all()
        digests = {}
        for name in names:
            row = (await session.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{name}" t'  # noqa: S608 - catalog names
            ))).one()
            digests[name] = (int(row[0]), str(row[1]))
    return digests
