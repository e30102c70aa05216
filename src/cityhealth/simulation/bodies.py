"""The units' daily bulk uploads, written by a process of their own while the platform ingests the day before.

At scale 1 a day is ≈6.7 M records (≈2.6 GB of NDJSON). Built in the simulator's own event loop, which is
also the in-process platform's, every body would stall the platform's job workers for as long as it takes
to write it; built in another process, a day's bodies are ready when the day comes. The feeds keep their
state (record serials, form cursors) in that process, and one process takes the requests in order, so
the bodies are the same for a seed however the work overlaps.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cityhealth.simulation.feed import UnitFeed

READ_BYTES = 1 << 20
_feeds: list[UnitFeed] = []  # in the writer process


@dataclass(frozen=True)
class DayBody:
    """A unit's bulk upload of one day, on disk until it is sent."""

    path: Path
    records: int  # without the workload report

    async def chunks(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            while chunk := file.read(READ_BYTES):
                yield chunk

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _start(feeds: list[UnitFeed]) -> None:
    _feeds[:] = feeds


def _write(index: int, day_of_month: int, days_in_month: int, path: Path) -> DayBody:
    body = _feeds[index].body_for(day_of_month, days_in_month)
    path.write_bytes(body)
    return DayBody(path, body.count(b"\n") - 1)


class BodyWriter:
    """Writes the feeds' day bodies into `directory`, in the order they are asked for."""

    def __init__(self, feeds: list[UnitFeed], directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        # Spawned, not forked: the simulator's process has threads and open connections a fork would copy.
        self._executor = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=(feeds,))

    def day(self, day_of_month: int, days_in_month: int, units: int) -> list[asyncio.Future[DayBody]]:
        """Start writing every unit's body of the day; each future holds one unit's body."""
        return [
            asyncio.wrap_future(self._executor.submit(
                _write, index, day_of_month, days_in_month, self.directory / f"day{day_of_month:02d}-{index}.ndjson"))
            for index in range(units)
        ]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for path in self.directory.glob("day*.ndjson"):
            path.unlink()
