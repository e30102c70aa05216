"""The one booking decision (slots.refusal) on its own: a session's row, the hospital's rules, a channel, a moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.booking.models import CHANNELS
from cityhealth.booking.release import ReleaseRules, at_business_time
from cityhealth.booking.slots import SessionSlots, exhausted, refusal

DAY = date(2026, 12, 10)
STARTS = at_business_time(DAY, time(8, 0))
RELEASED = at_business_time(DAY - timedelta(days=7), time(0, 0))
BEFORE_NOON = at_business_time(DAY - timedelta(days=3), time(9, 0))  # a moment when everything is open
RULES = ReleaseRules()


def _slots(capacity: int = 4, *, quotas: dict[str, int | None] | None = None, status: str = "open",
           booked_by: dict[str, int] | None = None) -> SessionSlots:
    quotas = {c: None for c in CHANNELS} | (quotas or {})
    booked_by = dict.fromkeys(CHANNELS, 0) | (booked_by or {})
    reserved = sum(q for q in quotas.values() if q is not None)
    open_booked = sum(n for c, n in booked_by.items() if quotas[c] is None)
    booked = sum(booked_by.values())
    return SessionSlots(1, status, DAY, STARTS, RELEASED, capacity, booked, capacity - reserved, open_booked,
                        quotas, booked_by, "1" * booked + "0" * (capacity - booked))


def _code(slots: SessionSlots, channel: str = "online_12320", now: datetime = BEFORE_NOON,
          rules: ReleaseRules = RULES) -> str | None:
    error = refusal(slots, rules, channel, now)
    return None if error is None else error.code


def test_an_open_released_session_with_slots_may_be_booked() -> None:
    assert _code(_slots()) is None


@pytest.mark.parametrize(("now", "rules", "code"), [
    (RELEASED - timedelta(seconds=1), RULES, "not_released"),
    (RELEASED, RULES, None),
    (at_business_time(DAY - timedelta(days=1), time(11, 59)), RULES, None),
    (at_business_time(DAY - timedelta(days=1), time(12, 0)), RULES, "next_day_closed"),
    (at_business_time(DAY, time(7, 0)), RULES, "same_day_not_allowed"),
    (at_business_time(DAY, time(7, 0)), replace(RULES, same_day_allowed=True), None),
    (STARTS, replace(RULES, same_day_allowed=True), "session_past"),
    (at_business_time(DAY + timedelta(days=1), time(7, 0)), RULES, "session_past"),
])
def test_the_release_window_and_cutoffs(now: datetime, rules: ReleaseRules, code: str | None) -> None:
    assert _code(_slots(), now=now, rules=rules) == code


def test_a_suspended_session_is_refused_before_anything_else() -> None:
    assert _code(_slots(status="suspended"), now=RELEASED - timedelta(days=1)) == "session_suspended"


def test_a_channel_with_a_quota_takes_only_its_quota() -> None:
    slots = _slots(4, quotas={"third_party": 1}, booked_by={"third_party": 1})
    assert _code(slots, "third_party") == "quota_exhausted"
    assert _code(slots, "online_12320") is None
    assert slots.left("online_12320") == 3


def test_channels_without_a_quota_share_what_the_quotas_leave() -> None:
    slots = _slots(4, quotas={"clinic": 2}, booked_by={"online_12320": 1, "phone": 1})
    assert (_code(slots, "online_12320"), _code(slots, "phone")) == ("sold_out", "sold_out")
    assert _code(slots, "clinic") is None  # its reserved slots are still there


def test_a_full_session_is_sold_out_for_every_channel() -> None:
    slots = _slots(2, quotas={"clinic": 1}, booked_by={"clinic": 1, "phone": 1})
    assert {_code(slots, c) for c in CHANNELS} == {"sold_out"}
    assert exhausted(slots, "clinic").code == "sold_out"


def test_take_and_give_back_keep_the_counters_and_the_map_together() -> None:
    slots = _slots(3, quotas={"clinic": 1})
    assert [slots.take("phone"), slots.take("clinic")] == [1, 2]
    assert (slots.booked, slots.open_booked, slots.booked_by["clinic"], slots.slot_map) == (2, 1, 1, "110")
    assert slots.give_back("phone", 1)
    assert not slots.give_back("phone", 1)  # given back already: nothing changes
    assert (slots.booked, slots.open_booked, slots.slot_map) == (1, 0, "010")
    assert slots.take("online_12320") == 1  # the freed slot is handed out again first


def test_a_row_read_without_its_map_can_be_decided_but_hands_out_nothing() -> None:
    slots = replace(_slots(), slot_map=None)
    assert _code(slots) is None
    with pytest.raises(RuntimeError, match="slot map"):
        slots.take("online_12320")


@given(capacity=st.integers(1, 12), quota=st.one_of(st.none(), st.integers(0, 6)),
       attempts=st.lists(st.sampled_from(CHANNELS), max_size=30))
def test_taking_while_the_rule_allows_never_oversells(capacity: int, quota: int | None,
                                                      attempts: list[str]) -> None:
    quota = None if quota is None else min(quota, capacity)
    slots = _slots(capacity, quotas={"third_party": quota})
    for channel in attempts:
        if refusal(slots, RULES, channel, BEFORE_NOON) is None:
            slots.take(channel)
    assert 0 <= slots.booked <= capacity
    assert slots.slot_map is not None
    assert slots.slot_map.count("1") == slots.booked
    assert quota is None or slots.booked_by["third_party"] <= quota
    assert 0 <= slots.open_booked <= slots.open_capacity
