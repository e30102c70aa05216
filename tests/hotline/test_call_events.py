"""The projection of a call from its events: order does not matter, the rules are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cityhealth.hotline.call_events import Event, assess, breaches, project

T0 = datetime(2022, 6, 15, 1, 30, tzinfo=UTC)  # 09:30 in Nanjing


def _event(event_id: str, kind: str, seconds: int, value: str | None = None, category: str | None = None) -> Event:
    return Event(event_id, kind, T0 + timedelta(seconds=seconds), value, category, f"fp-{event_id}")


CALL = [
    _event("s", "start", 0, "025-12320"),
    _event("i1", "ivr", 3, "main"),
    _event("i2", "ivr", 8, "booking"),
    _event("q", "queue", 12, "booking"),
    _event("a", "answer", 30, "staff:1"),
    _event("e", "end", 300, "resolved", "phone_booking"),
]


def test_a_whole_call_projects_to_its_fields_and_local_date_and_hour() -> None:
    seen = project(CALL)
    assert seen.state == "ended"
    assert (seen.city_line, seen.agent, seen.queue, seen.category, seen.outcome) == (
        "025-12320", "staff:1", "booking", "phone_booking", "resolved")
    assert seen.ivr_path == "main > booking"
    assert (seen.business_date.isoformat() if seen.business_date else None, seen.start_hour) == ("2022-06-15", 9)


@given(st.permutations(CALL))
def test_the_projection_does_not_depend_on_the_order_events_arrive_in(events: list[Event]) -> None:
    assert project(events) == project(CALL)
    assert breaches(events, frozenset(e.event_id for e in events)) == []


def test_a_call_whose_start_has_not_arrived_is_partial() -> None:
    assert project(CALL[3:]).state == "partial"
    assert project(CALL[:4]).state == "queued"


def test_an_end_before_the_start_is_blamed_on_the_new_event() -> None:
    early_end = _event("e", "end", -10, "resolved")
    found = breaches([CALL[0], early_end], frozenset({"e"}))
    assert [(b.event_id, b.field, b.rule) for b in found] == [("e", "at", "hotline.call.end_not_before_start")]
    found = breaches([CALL[0], early_end], frozenset({"s"}))  # the end was held: the new start is at fault
    assert [(b.event_id, b.rule) for b in found] == [("s", "hotline.call.end_not_before_start")]


def test_a_second_start_under_another_event_id_breaks_the_one_start_rule() -> None:
    found = breaches([CALL[0], _event("s2", "start", 1, "025-12320")], frozenset({"s2"}))
    assert [(b.event_id, b.rule) for b in found] == [("s2", "hotline.call.one_start")]


_KINDS = st.sampled_from(["start", "ivr", "queue", "answer", "end"])


@given(st.lists(st.tuples(_KINDS, st.integers(0, 5)), min_size=1, max_size=7))
def test_no_breach_exactly_when_every_rule_holds_pairwise(shape: list[tuple[str, int]]) -> None:
    events = [_event(f"x{n}", kind, seconds, "v") for n, (kind, seconds) in enumerate(shape)]
    kinds = [event.kind for event in events]
    start = next((event for event in events if event.kind == "start"), None)
    end = next((event for event in events if event.kind == "end"), None)
    keeps = (all(kinds.count(kind) <= 1 for kind in ("start", "answer", "end"))
             and all(start is None or event.at >= start.at for event in events)
             and all(end is None or end.at >= event.at for event in events))
    assert (breaches(events, frozenset(e.event_id for e in events)) == []) == keeps
    assert assess(events, frozenset({"x0"})) == (breaches(events, frozenset({"x0"})), project(events))
