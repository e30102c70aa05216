"""A work order's state and SLA status as its events describe them, and which steps each state allows.

Pure: no database. Nothing about an order's progress is stored but its events; every reader (the API, the
reminders, the statistics) replays them here, so the answer cannot drift from the history.

    received ─dispatch→ dispatched ─reply→ replied ─close→ closed ─callback(dissatisfied)→ reopened ─dispatch→ …
    while dispatched: extension request → approved (a later due time) or refused, both before the deadline
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# The kinds that move an order from one state to another; the state is the last of them.
STATE_OF_KIND = {"received": "received", "dispatched": "dispatched", "replied": "replied", "closed": "closed",
                 "reopened": "reopened"}
STATES = ("received", "dispatched", "replied", "closed", "reopened")
SLA_STATUSES = ("on_time", "due_soon", "overdue", "closed_late")
# An open order this close to its due time is "due soon", and its organization is reminded (催办).
DUE_SOON = timedelta(hours=24)

# Each step a caller may ask for: the states it is allowed in.
ALLOWED_FROM = {
    "dispatch": ("received", "reopened"),
    "request_extension": ("dispatched",),
    "approve_extension": ("dispatched",),
    "refuse_extension": ("dispatched",),
    "reply": ("dispatched",),
    "close": ("replied",),
    "callback": ("closed",),
}


@dataclass(frozen=True)
class Step:
    """One stored event, as the projection needs it."""

    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Projection:
    state: str
    due_at: datetime
    received_at: datetime
    pending_extension_days: int | None  # working days asked for and not yet decided
    closed_at: datetime | None  # the latest close, while the order is closed
    close_seq: int | None
    closed_on_time: bool | None
    callback: str | None  # the satisfaction given since the latest close
    reminded_for: datetime | None  # the due time the latest reminder was about
    closings: tuple[tuple[datetime, bool], ...]  # every close: when, and whether by its due time then

    def sla(self, now: datetime) -> str:
        """on_time, due_soon or overdue while open; on_time or closed_late once closed."""
        if self.state == "closed":
            return "on_time" if self.closed_on_time else "closed_late"
        if now > self.due_at:
            return "overdue"
        return "due_soon" if self.due_at - now <= DUE_SOON else "on_time"

    def needs_reminder(self, now: datetime) -> bool:
        """Dispatched, due within DUE_SOON and not yet past due, and not reminded of this due time."""
        return (self.state == "dispatched" and now <= self.due_at and self.due_at - now <= DUE_SOON
                and self.reminded_for != self.due_at)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def project(steps: Sequence[Step]) -> Projection:
    """The order after all its events, in their sequence."""
    ordered = sorted(steps, key=lambda step: step.seq)
    if not ordered or ordered[0].kind != "received":
        raise ValueError("a work order's history starts with its receipt")
    first = ordered[0]
    state, due, received_at = "received", _moment(first.data["due_at"]), first.at
    pending: int | None = None
    closed_at: datetime | None = None
    close_seq: int | None = None
    on_time: bool | None = None
    callback: str | None = None
    reminded_for: datetime | None = None
    closings: list[tuple[datetime, bool]] = []
    for step in ordered[1:]:
        state = STATE_OF_KIND.get(step.kind, state)
        if step.kind == "extension_requested":
            pending = int(step.data["working_days"])
        elif step.kind == "extension_approved":
            pending, due = None, _moment(step.data["due_at"])
        elif step.kind in ("extension_refused", "replied"):
            pending = None
        elif step.kind == "closed":
            closed_at, close_seq, on_time, callback = step.at, step.seq, step.at <= due, None
            closings.append((step.at, step.at <= due))
        elif step.kind == "callback":
            callback = str(step.data["satisfaction"])
        elif step.kind == "reopened":
            due, closed_at, close_seq, on_time, callback = _moment(step.data["due_at"]), None, None, None, None
        elif step.kind == "reminded":
            reminded_for = _moment(step.data["due_at"])
    return Projection(state=state, due_at=due, received_at=received_at, pending_extension_days=pending,
                      closed_at=closed_at, close_seq=close_seq, closed_on_time=on_time, callback=callback,
                      reminded_for=reminded_for, closings=tuple(closings))


def refusal(projection: Projection, step: str, now: datetime) -> tuple[str, str] | None:
    """Why `step` may not be taken now, as (rule, message); None when it may."""
    allowed = ALLOWED_FROM[step]
    if projection.state not in allowed:
        return ("hotline.work_order.transition",
                f"the work order is {projection.state}; {step} is allowed only when it is {' or '.join(allowed)}")
    if step == "request_extension":
        if projection.pending_extension_days is not None:
            return ("hotline.work_order.one_extension_at_a_time",
                    "an extension request of this work order awaits a supervisor's decision")
        if now >= projection.due_at:
            return ("hotline.work_order.extension_in_advance",
                    f"an extension must be asked for before the deadline ({projection.due_at.isoformat()})")
    if step in ("approve_extension", "refuse_extension") and projection.pending_extension_days is None:
        return ("hotline.work_order.extension_pending", "no extension request of this work order awaits a decision")
    if step == "approve_extension" and now >= projection.due_at:
        return ("hotline.work_order.extension_in_advance",
                f"an extension must be approved before the deadline ({projection.due_at.isoformat()})")
    if step == "callback" and projection.callback is not None:
        return ("hotline.work_order.one_callback",
                f"the work order's result already has its callback ({projection.callback})")
    return None
