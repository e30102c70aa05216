"""The chronic programmes' periodic work: keeping the patient-month table of the current and the previous month
filled, so the indicators read a table of one row per patient (the previous month too, for follow-ups uploaded
after it ended)."""

from __future__ import annotations

from cityhealth import queue
from cityhealth.clock import business_date
from cityhealth.records import chronic_indicators

REBUILD_EVERY_S = 6 * 3600


@queue.periodic("records.rebuild_chronic_months", every_s=REBUILD_EVERY_S)
async def rebuild_chronic_months(runtime: queue.Runtime) -> dict[str, int]:
    """Rebuild this month's and last month's patient-months, each in its own transaction; rows per month."""
    today = business_date(runtime.clock.now())
    written = {}
    for month in (chronic_indicators.previous_month(today), f"{today.year:04d}-{today.month:02d}"):
        async with runtime.database.transaction() as session:
            written[month] = await chronic_indicators.rebuild_month(session, runtime.clock, month)
    return written
