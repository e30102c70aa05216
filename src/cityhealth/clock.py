"""The one source of "now". Services take a Clock; none calls datetime.now() itself.

Received times, upload days, release times, cut-offs and no-shows all hang on it, so the simulator and
the tests move a SimulatedClock through a month in minutes. Production always runs on SystemClock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

# Business days are Asia/Shanghai days; storage is UTC.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Cell(Protocol):
    """Where a simulated clock keeps its moment: whole microseconds since 1970."""

    value: int


class _Micros:
    """A cell private to this process."""

    def __init__(self, value: int) -> None:
        self.value = value


class SimulatedClock:
    """A clock that only moves when told to. Refused in production (see create_app).

    `follower()` lets processes the platform starts (bulk ingest, see collection/job_processes.py) read the
    same simulated time: the moment then lives in shared memory, which only this clock writes.
    """

    def __init__(self, start: datetime) -> None:
        _require_aware(start)
        self._micros: _Cell = _Micros(_to_micros(start))

    def now(self) -> datetime:
        return _moment(self._micros)

    def set(self, moment: datetime) -> None:
        _require_aware(moment)
        micros = _to_micros(moment)
        if micros < self._micros.value:
            raise ValueError("the simulated clock never moves backwards")
        self._micros.value = micros

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def follower(self) -> FollowingClock:
        """A read-only view of this clock for a process started from this one (passed to it when spawned)."""
        if isinstance(self._micros, _Micros):
            import multiprocessing  # here: only a simulation that spawns processes needs it

            # One writer, and an aligned 8-byte value is read whole: no lock is needed.
            self._micros = multiprocessing.get_context("spawn").RawValue("q", self._micros.value)
        return FollowingClock(self._micros)


class FollowingClock:
    """Another process's view of a SimulatedClock: the time it was last set to, never moved from here."""

    def __init__(self, micros: _Cell) -> None:
        self._micros = micros

    def now(self) -> datetime:
        return _moment(self._micros)


def _moment(cell: _Cell) -> datetime:
    return _EPOCH + timedelta(microseconds=cell.value)


def _to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def business_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an instant."""
    _require_aware(moment)
    return moment.astimezone(BUSINESS_TZ).date()


def business_midnight(day: date) -> datetime:
    """00:00 Asia/Shanghai of a day, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetimes are not accepted; give a timezone")
