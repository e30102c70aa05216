"""The hotline's periodic work on the job queue: escalating crisis follow-ups past their deadline."""

from __future__ import annotations

from cityhealth import queue
from cityhealth.hotline import crisis

ESCALATE_EVERY_S = 60


@queue.periodic("hotline.escalate_crisis_follow_ups", every_s=ESCALATE_EVERY_S)
async def escalate_crisis_follow_ups(runtime: queue.Runtime) -> list[int]:
    """Escalate the open crisis follow-ups past their deadline; the ids escalated."""
    async with runtime.database.transaction() as session:
        return await crisis.escalate_overdue(session, runtime.clock)
