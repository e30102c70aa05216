"""The security room's periodic work on the job queue (queue.py): forgetting old failure counters."""

from __future__ import annotations

from datetime import timedelta

from cityhealth import queue
from cityhealth.security import repository

PURGE_EVERY_S = 3600


@queue.periodic("security.purge_auth_failures", every_s=PURGE_EVERY_S)
async def purge_auth_failures(runtime: queue.Runtime) -> int:
    """Delete failed-authentication counters older than the retention period (the audit trail keeps the
    first failure of every window)."""
    before = runtime.clock.now() - timedelta(days=runtime.settings.auth_failure_retention_days)
    async with runtime.database.transaction() as session:
        return await repository.purge_auth_failures(session, before)
