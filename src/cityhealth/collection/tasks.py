"""The collection room's tasks on the job queue (queue.py): the bulk job (jobs.py) and the raw-payload purge."""

from __future__ import annotations

from cityhealth import queue
from cityhealth.collection import jobs, service

PURGE_EVERY_S = 3600

__all__ = ["jobs", "purge_raw_payloads"]


@queue.periodic("collection.purge_raw_payloads", every_s=PURGE_EVERY_S)
async def purge_raw_payloads(runtime: queue.Runtime) -> int:
    """Delete the raw payloads (and spools) past the retention period, and frames of abandoned uploads."""
    async with runtime.database.transaction() as session:
        return await service.purge(session, runtime.clock, runtime.settings.raw_payload_retention_days)
