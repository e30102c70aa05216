"""The results owed to the 12345 systems: a row written in the transaction that closes the order, and a task
deferred in that same transaction that sends it (work_order_outbox rows are the truth; the periodic run in
tasks.py is the safety net for a task lost with its worker, and the retry of a failed send).

Never lost: the row exists if, and only if, the close committed, and stays pending until a send succeeds,
retried with a growing pause. Never sent twice to the receiver's knowledge: every send carries the row's
reference (the source's order id and the close's sequence), which the receiver de-duplicates on; a send that
succeeded but whose bookkeeping was lost is sent again with the same reference.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth import queue as task_queue
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.work_order_events import Step
from cityhealth.hotline.work_order_models import WorkOrder
from cityhealth.hotline.work_order_statistics import append_step

logger = logging.getLogger(__name__)
SEND_TASK = "hotline.send_work_order_results"
SEND_ACTOR = "task:hotline.send_work_order_results"
GATEWAY = "hotline.twelve345_gateway"
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
_DEFERRED = "cityhealth.hotline.results_deferred"


class ResultGateway(Protocol):
    """The 12345 systems' interface for results. `reference` is the same on every retry of one result."""

    async def send(self, source: str, order_id: str, reference: str, result: dict[str, Any]) -> None: ...


class FileResultSink:
    """Development gateway: one JSON line per result in var/outbox/12345.ndjson."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, source: str, order_id: str, reference: str, result: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"source": source, "order_id": order_id, "reference": reference, "result": result},
                          ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def retry_pause(attempts: int) -> timedelta:
    """The pause before the next attempt after `attempts` failed ones: 30 s, 1 min, 2 min, … at most an hour."""
    pause: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(pause, LONGEST_RETRY)


async def queue_result(session: AsyncSession, order: WorkOrder, close_seq: int, now: datetime) -> None:
    """Owe the order's source the result of this close, in the caller's transaction, and send it soon."""
    await repository.add_result(session, {
        "work_order_id": order.id, "close_seq": close_seq, "reference": f"{order.source_order_id}#{close_seq}",
        "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": None, "created_at": now,
        "sent_at": None})
    transaction = session.sync_session.get_transaction()
    if transaction is not None and session.sync_session.info.get(_DEFERRED) is transaction:
        return
    await task_queue.defer(session, SEND_TASK, outbox="12345")
    session.sync_session.info[_DEFERRED] = transaction


def _result(events: list[Any], close_seq: int) -> dict[str, Any]:
    """What the 12345 system is told: the reply the close accepted, when, and the close's note."""
    closing = next(event for event in events if event.seq == close_seq)
    replies = [event for event in events if event.kind == "replied" and event.seq < close_seq]
    return {"closed_at": closing.at.isoformat(), "reply": replies[-1].note if replies else None,
            "replied_at": replies[-1].at.isoformat() if replies else None, "note": closing.note}


@dataclass(frozen=True)
class SendResult:
    sent: int
    failed: int


async def send_due(database: Database, clock: Clock, gateway: ResultGateway, *, limit: int = 100) -> SendResult:
    """Send the results whose attempt is due; rows locked (SKIP LOCKED) so that senders may run side by side."""
    sent = failed = 0
    async with database.transaction() as session:
        rows = await repository.due_results(session, clock.now(), limit, skip_locked=not database.is_sqlite)
        for row in rows:
            # The order's lock: its `result_returned` event takes the next number in its one line of events.
            await repository.order(session, row.work_order_id, lock=True)
            events = await repository.events(session, row.work_order_id)
            now = clock.now()
            try:
                await gateway.send(row.source, row.source_order_id, row.reference, _result(events, row.close_seq))
            except Exception as exc:  # a failed send must not lose the others; it is retried later
                logger.warning("12345 result send failed", extra={"work_order_id": row.work_order_id,
                                                                   "error_type": type(exc).__name__})
                await repository.set_result(session, row.id, {
                    "attempts": row.attempts + 1, "last_error": type(exc).__name__[:255],
                    "next_attempt_at": now + retry_pause(row.attempts + 1)})
                failed += 1
                continue
            await repository.set_result(session, row.id, {"status": "sent", "sent_at": now,
                                                          "attempts": row.attempts + 1})
            history = [Step(event.seq, event.kind, event.at, dict(event.data)) for event in events]
            await append_step(session, row.source, history, {
                "work_order_id": row.work_order_id, "seq": max(event.seq for event in events) + 1,
                "kind": "result_returned", "at": now, "actor": SEND_ACTOR, "request_key": None, "note": None,
                "data": {"reference": row.reference, "close_seq": row.close_seq}})
            sent += 1
    return SendResult(sent=sent, failed=failed)


async def send_with(runtime: task_queue.Runtime) -> SendResult:
    """Send through the process's gateway (development: a file)."""
    gateway: ResultGateway = runtime.resource(
        GATEWAY, lambda: FileResultSink(runtime.settings.var_dir / "outbox" / "12345.ndjson"))
    return await send_due(runtime.database, runtime.clock, gateway)


@task_queue.task(SEND_TASK, lock_by="outbox")
async def send_results(runtime: task_queue.Runtime, outbox: str) -> None:
    """The sending task: one at a time (its lock); a run takes every result due by then."""
    # Started from the commit of the request that deferred it (SQLite): its context is the job's, not the request's.
    await asyncio.create_task(send_with(runtime), context=contextvars.Context())


@task_queue.recover(SEND_TASK)
async def unsent(runtime: task_queue.Runtime) -> list[dict[str, Any]]:
    """SQLite: results still pending when the server starts are sent then."""
    async with runtime.database.transaction() as session:
        return [{"outbox": "12345"}] if await repository.any_pending_result(session) else []
