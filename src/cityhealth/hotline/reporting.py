"""The telephony system's event reports: a batch of events, checked whole, written in a few statements.

A report is taken whole or refused whole, every fault named (`events[i].field`, the value, the rule). Each
event is identified by the call's telephony id and its own event id: one already held with the same content
is a duplicate (counted, not stored again), with other content a refusal. A call's row is the projection of
all its events (call_events.py), so events may arrive in any order, in any number of reports.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.hotline import crisis_repository, repository
from cityhealth.hotline.call_events import Event, Projection, assess
from cityhealth.hotline.call_tallies import Moves, tally_key
from cityhealth.hotline.models import CRISIS
from cityhealth.hotline.schemas import CallEventIn, CallEventReport, CallEventReportResult
from cityhealth.registry.service import IdentifierError, mask_phone, validate_phone
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal

CALLER_PURPOSE = "hotline_call.caller_number"
# A crisis-intervention call's follow-up is due this long after the call (its end, else its start).
CRISIS_FOLLOW_UP_DEADLINE = timedelta(hours=24)
# The field each kind carries its value in; every other kind-specific field must be absent.
_VALUE_FIELD = {"start": "city_line", "ivr": "ivr_node", "queue": "queue", "answer": "agent", "end": "outcome"}
_KIND_FIELDS = {"city_line", "caller_number", "ivr_node", "queue", "agent", "category", "outcome"}
_ALLOWED = {"start": {"city_line", "caller_number"}, "ivr": {"ivr_node"}, "queue": {"queue"},
            "answer": {"agent"}, "end": {"outcome", "category"}}
_FOREIGN = {kind: sorted(_KIND_FIELDS - allowed) for kind, allowed in _ALLOWED.items()}  # in the order named


@dataclass
class _Report:
    errors: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[tuple[int, Event]]] = field(default_factory=lambda: defaultdict(list))
    callers: dict[str, tuple[str, str]] = field(default_factory=dict)  # call id -> (HMAC, number)
    duplicates: int = 0

    def fault(self, index: int, name: str, value: Any, rule: str, message: str) -> None:
        self.errors.append({"field": f"events[{index}].{name}", "value": value, "rule": rule, "message": message})


def follow_up_due(ended_at: datetime | None, started_at: datetime | None, now: datetime) -> datetime:
    return (ended_at or started_at or now) + CRISIS_FOLLOW_UP_DEADLINE


def _fingerprint(item: CallEventIn, value: str | None, caller_hash: str | None) -> str:
    # The instant in UTC: the same moment written with another offset is the same event.
    moment = item.at.astimezone(UTC).isoformat()
    content = "\x1f".join((item.kind, moment, value or "", item.category or "", caller_hash or ""))
    return hashlib.sha256(content.encode()).hexdigest()


def _read(report: CallEventReport, settings: Settings) -> _Report:
    """Each event checked for its kind's fields, protected and fingerprinted; duplicates in the report dropped."""
    cipher = field_cipher(settings)
    found = _Report()
    seen: dict[tuple[str, str], str] = {}
    for index, item in enumerate(report.events):
        for name in _FOREIGN[item.kind]:
            if getattr(item, name) is None:
                continue
            shown = "(withheld)" if name == "caller_number" else getattr(item, name)
            found.fault(index, name, shown, "hotline.event.field_of_kind",
                        f"a {item.kind} event does not carry {name}")
        value_field = _VALUE_FIELD[item.kind]
        value = getattr(item, value_field)
        if value is None:
            found.fault(index, value_field, None, "hotline.event.required_for_kind",
                        f"a {item.kind} event needs {value_field}")
        caller_hash = None
        if item.kind == "start" and item.caller_number:
            try:
                number = validate_phone(item.caller_number)
            except IdentifierError as error:
                found.fault(index, "caller_number", mask_phone(item.caller_number), "hotline.caller_number.format",
                            str(error))
                continue
            caller_hash = cipher.lookup_hash(CALLER_PURPOSE, number)
            found.callers[item.call_id] = (caller_hash, number)  # encrypted only if the start is new
        fingerprint = _fingerprint(item, value, caller_hash)
        identity = (item.call_id, item.event_id)
        if identity in seen:
            if seen[identity] == fingerprint:
                found.duplicates += 1
            else:
                found.fault(index, "event_id", item.event_id, "hotline.event.identity_reused",
                            "this report carries another event with the same call id and event id")
            continue
        seen[identity] = fingerprint
        found.events[item.call_id].append(
            (index, Event(item.event_id, item.kind, item.at, value, item.category, fingerprint)))
    return found


def _refuse(errors: list[dict[str, Any]]) -> ValidationFailed:
    first = errors[0]
    return ValidationFailed(f"{first['field']}: {first['message']} (the report is refused whole)",
                            code="call_events_refused", field=first["field"], value=first["value"],
                            rule=first["rule"], errors=errors)


async def report_events(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                        report: CallEventReport) -> CallEventReportResult:
    """Store a report's new events and the calls they describe; refused whole when any event is at fault."""
    now = clock.now()
    found = _read(report, settings)
    named = {event.value for events in found.events.values() for _, event in events
             if event.kind == "start" and event.value}
    lines = {line.line: line for line in await repository.city_lines(session, named)} if named else {}
    for events in found.events.values():
        for index, event in events:
            if event.kind == "start" and event.value is not None:
                line = lines.get(event.value)
                if line is None or not line.active:
                    found.fault(index, "city_line", event.value, "hotline.city_line.known",
                                "no active city line is registered under this name")
    if found.errors:
        raise _refuse(sorted(found.errors, key=lambda error: error["field"]))

    held = await repository.held_calls(session, list(found.events))
    stored = await repository.events_of(session, [row.id for row in held.values()])
    fresh: dict[str, Projection] = {}  # each call that gains events: all its events projected
    new_events: list[tuple[str, Event]] = []
    for call_id, events in found.events.items():
        row = held.get(call_id)
        known = {event.event_id: event for event in (stored[row.id] if row is not None else [])}
        new: list[Event] = []
        index_of: dict[str, int] = {}
        for index, event in events:
            old = known.get(event.event_id)
            if old is None:
                new.append(event)
                index_of[event.event_id] = index
            elif old.fingerprint == event.fingerprint:
                found.duplicates += 1
            else:
                found.fault(index, "event_id", event.event_id, "hotline.event.identity_reused",
                            "the platform holds another event of this call under this event id")
        if not new:  # nothing new of this call: nothing to check or project again
            continue
        faults, fresh[call_id] = assess([*known.values(), *new], frozenset(index_of))
        for breach in faults:
            found.fault(index_of[breach.event_id], breach.field, breach.value, breach.rule, breach.message)
        new_events.extend((call_id, event) for event in new)
    if found.errors:
        raise _refuse(sorted(found.errors, key=lambda error: error["field"]))

    cipher = field_cipher(settings)
    rows: list[dict[str, Any]] = []
    crisis: list[tuple[str, datetime | None, datetime | None]] = []
    moves = Moves()
    for call_id, seen in fresh.items():
        row = held.get(call_id)
        if row is not None and row.started_at is not None:
            # The start came in an earlier report: the call keeps the line, city and caller it was given then.
            line_id, city_code = row.city_line_id, row.city_code
            caller_hash, caller_cipher = row.caller_hash, row.caller_cipher
        else:
            line = lines.get(seen.city_line) if seen.city_line else None
            line_id, city_code = (line.id, line.city_code) if line is not None else (None, None)
            caller_hash, caller_cipher = None, None
            if call_id in found.callers:  # the start is new, with its number: encrypted once, here
                caller_hash, number = found.callers[call_id]
                caller_cipher = cipher.encrypt(CALLER_PURPOSE, number)
        # An agent's classification stands; otherwise the telephony's.
        category = row.category if row is not None and row.classified_by is not None else seen.category
        rows.append({
            "id": row.id if row is not None else None, "telephony_call_id": call_id,
            "state": seen.state, "city_line_id": line_id, "city_code": city_code,
            "started_at": seen.started_at, "business_date": seen.business_date, "start_hour": seen.start_hour,
            "ivr_path": seen.ivr_path, "queue": seen.queue, "queued_at": seen.queued_at,
            "answered_at": seen.answered_at, "agent": seen.agent, "ended_at": seen.ended_at,
            "caller_hash": caller_hash, "caller_cipher": caller_cipher, "reported_category": seen.category,
            "category": category, "classified_by": None, "outcome": seen.outcome, "note": None, "created_at": now,
            "updated_at": now,
        })
        moves.move(None if row is None else tally_key(row.business_date, row.start_hour, row.city_code,
                                                      row.category, row.outcome),
                   tally_key(seen.business_date, seen.start_hour, city_code, category, seen.outcome))
        if category == CRISIS and (row is None or row.category != CRISIS):
            crisis.append((call_id, seen.ended_at, seen.started_at))
    rows.sort(key=lambda row: row["telephony_call_id"])  # the lock order of held_calls, for new keys too
    written = await repository.write_calls(session, rows)
    if any(row["id"] is None and not written.get(row["telephony_call_id"], (0, False))[1] for row in rows):
        raise Conflict("another report created one of these calls at the same moment; send the report again",
                       code="call_reported_concurrently", field="events", rule="hotline.call.one_report_at_a_time")
    await repository.add_tallies(session, moves.rows())
    ids = {call_id: call_id_and_new[0] for call_id, call_id_and_new in written.items()}
    await repository.insert_events(session, [
        {"call_id": ids[call_id], "event_id": event.event_id, "kind": event.kind, "at": event.at,
         "value": event.value, "category": event.category, "fingerprint": event.fingerprint, "received_at": now}
        for call_id, event in new_events])
    await crisis_repository.open_follow_ups(session, [
        {"call_id": ids[call_id], "status": "open", "opened_at": now, "due_at": follow_up_due(ended, started, now),
         "updated_at": now} for call_id, ended, started in crisis])
    accepted = len(new_events)
    record(session, clock, principal, Action.CREATE, "hotline_call_events",
           detail=f"accepted={accepted} duplicates={found.duplicates} calls={len(found.events)}")
    return CallEventReportResult(accepted=accepted, duplicates=found.duplicates, calls=len(found.events))
