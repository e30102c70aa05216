"""The booking room's scheduled jobs, run in-process by a server on the system clock.

A server on a simulated clock (tests, the city simulator) runs none: whoever moves the clock calls
`lifecycle.sweep_holds` / `lifecycle.mark_no_shows` itself. With several workers or servers each runs
the loop; a PostgreSQL advisory lock per job lets one of them do each round (SQLite serialises writers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from cityhealth.booking import lifecycle
from cityhealth.clock import Clock
from cityhealth.db.engine import Database

logger = logging.getLogger(__name__)
HOLD_SWEEP_EVERY_S = 30.0
NO_SHOW_EVERY_S = 300.0
_LOCKS = {"sweep_holds": 0x0B00_C001, "mark_no_shows": 0x0B00_C002}


async def _exclusively(database: Database, name: str, job: Callable[[], Awaitable[object]]) -> None:
    if database.is_sqlite:
        await job()
        return
    async with database.engine.connect() as connection:
        # A session-level lock on a connection of its own: held while the job runs its own transactions.
        got = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCKS[name]})).scalar()
        await connection.commit()
        if not got:
            return
        try:
            await job()
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCKS[name]})
            await connection.commit()


async def run(database: Database, clock: Clock, stop: asyncio.Event) -> None:
    """Sweep expired holds every 30 s and mark no-shows every 5 minutes until `stop` is set."""
    since_no_shows = NO_SHOW_EVERY_S
    while not stop.is_set():
        try:
            await _exclusively(database, "sweep_holds", lambda: lifecycle.sweep_holds(database, clock))
            if since_no_shows >= NO_SHOW_EVERY_S:
                await _exclusively(database, "mark_no_shows", lambda: lifecycle.mark_no_shows(database, clock))
                since_no_shows = 0.0
        except Exception:  # a failed round must not end the loop; the next one retries
            logger.exception("booking job round failed")
        try:
            await asyncio.wait_for(stop.wait(), HOLD_SWEEP_EVERY_S)
        except TimeoutError:
            since_no_shows += HOLD_SWEEP_EVERY_S
