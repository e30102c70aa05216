"""A call's state as its events describe it, whatever order they arrived in; the rules they must keep.

Pure: no database. The service feeds a call's stored events plus the new ones; the projection depends on
the set of events only (never on arrival order), so a replay, a retry or a reordering gives the same call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from cityhealth.clock import BUSINESS_TZ

# Events that a call has at most one of.
SINGLE_KINDS = ("start", "answer", "end")
# Sorting events of equal time: a start before anything, an end after everything.
_KIND_ORDER = {"start": 0, "ivr": 1, "queue": 2, "answer": 3, "end": 4}


@dataclass(frozen=True)
class Event:
    """One reported event: `value` is the start's city line, the IVR node, the queue, the agent or the outcome."""

    event_id: str
    kind: str
    at: datetime
    value: str | None
    category: str | None
    fingerprint: str


@dataclass(frozen=True)
class Breach:
    """A rule the call's events break, blamed on one event."""

    event_id: str
    field: str
    value: str
    rule: str
    message: str


@dataclass(frozen=True)
class Projection:
    state: str
    city_line: str | None
    started_at: datetime | None
    business_date: date | None
    start_hour: int | None
    ivr_path: str | None
    queue: str | None
    queued_at: datetime | None
    answered_at: datetime | None
    agent: str | None
    ended_at: datetime | None
    category: str | None
    outcome: str | None


def _order(event: Event) -> tuple[datetime, int, str]:
    return event.at, _KIND_ORDER[event.kind], event.event_id


def ordered(events: Iterable[Event]) -> list[Event]:
    """Events in call order: time, then the kind's place in a call, then identity (a total order)."""
    return sorted(events, key=_order)


def project(events: Iterable[Event]) -> Projection:
    """The call the events describe (they are assumed to keep the rules of `breaches`)."""
    return _project(ordered(events))


def breaches(events: Iterable[Event], blame: frozenset[str]) -> list[Breach]:
    """The rules the events break together, each blamed on one of the events in `blame` (the new ones)."""
    return _breaches(ordered(events), blame)


def assess(events: Iterable[Event], blame: frozenset[str]) -> tuple[list[Breach], Projection]:
    """`breaches` and `project` of the same events, ordered once (a report does both for every call it adds to)."""
    calls = ordered(events)
    return _breaches(calls, blame), _project(calls)


def _project(calls: list[Event]) -> Projection:
    start = answer = end = None
    queues: list[Event] = []
    nodes: list[str] = []
    for event in calls:  # one pass, in call order: the first of each single kind counts
        kind = event.kind
        if kind == "ivr":
            if event.value:
                nodes.append(event.value)
        elif kind == "queue":
            queues.append(event)
        elif kind == "start":
            start = start or event
        elif kind == "answer":
            answer = answer or event
        else:
            end = end or event
    local = start.at.astimezone(BUSINESS_TZ) if start is not None else None
    if start is None:
        state = "partial"
    elif end is not None:
        state = "ended"
    elif answer is not None:
        state = "answered"
    elif queues:
        state = "queued"
    elif nodes:
        state = "in_ivr"
    else:
        state = "started"
    path = " > ".join(nodes)
    return Projection(
        state=state,
        city_line=start.value if start else None,
        started_at=start.at if start else None,
        business_date=local.date() if local else None,
        start_hour=local.hour if local else None,
        ivr_path=(path if len(path) <= 400 else path[:397] + "...") or None,
        queue=queues[-1].value if queues else None,
        queued_at=queues[0].at if queues else None,
        answered_at=answer.at if answer else None,
        agent=answer.value if answer else None,
        ended_at=end.at if end else None,
        category=end.category if end else None,
        outcome=end.value if end else None,
    )


def _breaches(calls: list[Event], blame: frozenset[str]) -> list[Breach]:
    kinds = [event.kind for event in calls]
    # In call order (an equal time puts a start first and an end last) the rules below all hold exactly when
    # each single kind occurs at most once, a start is the first event and an end the last: the usual case.
    if (all(kinds.count(kind) <= 1 for kind in SINGLE_KINDS) and ("start" not in kinds or kinds[0] == "start")
            and ("end" not in kinds or kinds[-1] == "end")):
        return []
    found: list[Breach] = []
    single: dict[str, Event] = {}
    for event in calls:
        if event.kind in SINGLE_KINDS:
            kept = single.setdefault(event.kind, event)
            if kept is not event:
                culprit = event if event.event_id in blame else kept
                found.append(Breach(culprit.event_id, "kind", event.kind, f"hotline.call.one_{event.kind}",
                                    f"a call has one {event.kind} event; {kept.event_id!r} is already it"))
    start, answer, end = single.get("start"), single.get("answer"), single.get("end")

    def not_before(later: Event | None, earlier: Event | None, rule: str, message: str) -> None:
        if later is None or earlier is None or later.at >= earlier.at:
            return
        culprit = later if later.event_id in blame else earlier
        found.append(Breach(culprit.event_id, "at", culprit.at.isoformat(), rule, message))

    not_before(end, start, "hotline.call.end_not_before_start", "the call's end is before its start")
    not_before(answer, start, "hotline.call.answer_not_before_start", "the call is answered before it started")
    not_before(end, answer, "hotline.call.end_not_before_answer", "the call ends before it was answered")
    for event in calls:
        if event.kind in ("ivr", "queue"):
            not_before(event, start, f"hotline.call.{event.kind}_not_before_start",
                       f"the call's {event.kind} event is before its start")
            not_before(end, event, f"hotline.call.{event.kind}_not_after_end",
                       f"the call's {event.kind} event is after its end")
    return [breach for breach in found if breach.event_id in blame]
