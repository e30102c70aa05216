"""The hotline's periodic work on the job queue: escalating crisis follow-ups past their deadline, reminding
organizations of work orders due soon (催办), and sending the results owed to 12345 (the sending task's safety
net and its retries; work_order_outbox.py registers the task itself)."""

from __future__ import annotations

from cityhealth import queue
from cityhealth.hotline import crisis, work_order_outbox, work_orders

ESCALATE_EVERY_S = 60
REMIND_EVERY_S = 300
SEND_RESULTS_EVERY_S = 60


@queue.periodic("hotline.escalate_crisis_follow_ups", every_s=ESCALATE_EVERY_S)
async def escalate_crisis_follow_ups(runtime: queue.Runtime) -> list[int]:
    """Escalate the open crisis follow-ups past their deadline; the ids escalated."""
    async with runtime.database.transaction() as session:
        return await crisis.escalate_overdue(session, runtime.clock)


@queue.periodic("hotline.remind_work_orders", every_s=REMIND_EVERY_S)
async def remind_work_orders(runtime: queue.Runtime) -> list[int]:
    """Remind the organizations of their dispatched work orders due within a day; the ids reminded."""
    async with runtime.database.transaction() as session:
        return await work_orders.remind_due(session, runtime.clock)


@queue.periodic("hotline.retry_work_order_results", every_s=SEND_RESULTS_EVERY_S)
async def send_work_order_results(runtime: queue.Runtime) -> work_order_outbox.SendResult:
    """Send the results owed to 12345 whose attempt is due: what a lost task left, and the retries."""
    return await work_order_outbox.send_with(runtime)
