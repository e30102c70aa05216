"""A unit's month of records: allocated to its upload days exactly, late ones late, defects one rule each."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.examples import make_record
from cityhealth.simulation.bookings import spread
from cityhealth.simulation.feed import VARIANTS, LineTemplates, UnitFeed, _shares, allocate
from cityhealth.simulation.plan import LATE_DELAY_DAYS, RateTarget, UnitPlan, plan_month
from tests.simulation.scenarios import load, small


def _unit(**changes: object) -> UnitPlan:
    fields: dict[str, object] = {
        "name": "测试医院", "area_code": None, "uploaded": 60, "upload_days": (10, 20, 30), "forms": ("2", "10"),
        "outpatient": RateTarget(20, 15), "inpatient": RateTarget(10, 6), "visits": 31, "discharges": 3,
        "backlog_accepted": 25, "public_health": {}, "rejected": 5, **changes}
    return UnitPlan(**fields)  # type: ignore[arg-type]


def _feeds(tmp_path: Path, scale: str = "1") -> tuple[list[UnitFeed], int]:
    plan = plan_month(load(small(), tmp_path), Decimal(scale))
    feeds = [UnitFeed(unit, f"ORG{index:03d}", plan.month, "320115") for index, unit in enumerate(plan.units)]
    return feeds, plan.days_in_month


@pytest.mark.parametrize(("count", "days", "offset", "expected"), [
    (10, [1, 2, 3], 0, {1: 4, 2: 3, 3: 3}),
    (10, [1, 2, 3], 1, {1: 3, 2: 4, 3: 3}),
    (2, [5, 6, 7, 8], 3, {5: 1, 6: 0, 7: 0, 8: 1}),
    (0, [1, 2], 0, {}),
    (5, [], 0, {}),
])
def test_shares_spread_a_count_evenly_with_the_remainder_from_the_offset(
        count: int, days: list[int], offset: int, expected: dict[int, int]) -> None:
    assert _shares(count, days, offset) == expected


def test_allocation_sends_every_category_exactly_and_something_on_every_upload_day() -> None:
    allocation = allocate(_unit())
    totals = {category: sum(days.values()) for category, days in allocation.items()}
    assert totals == {"conforming_out": 15, "late_out": 5, "conforming_in": 6, "late_in": 4, "backlog": 25,
                      "public_health": 0, "rejected": 5}
    per_day = Counter[int]()
    for days in allocation.values():
        per_day.update(days)
    assert sorted(per_day) == [10, 20, 30]
    assert all(per_day[day] > 0 for day in (10, 20, 30))
    assert sum(per_day.values()) == 60


def test_late_records_go_only_to_days_after_the_delay() -> None:
    allocation = allocate(_unit(upload_days=(1, 2, 3, 15)))
    for category in ("late_out", "late_in"):
        assert set(allocation[category]) == {3, 15}
        assert all(day > LATE_DELAY_DAYS for day in allocation[category])


def test_late_records_without_a_day_late_enough_are_refused() -> None:
    with pytest.raises(ValueError, match=f"late records need an upload day after day {LATE_DELAY_DAYS}"):
        allocate(_unit(upload_days=(1, 2)))


def test_more_upload_days_than_records_are_refused() -> None:
    unit = _unit(uploaded=2, upload_days=(5, 6, 7), outpatient=RateTarget(1, 1), inpatient=None,
                 backlog_accepted=1, rejected=0)
    with pytest.raises(ValueError, match="more upload days than records"):
        allocate(unit)


def test_a_units_whole_month_is_its_uploaded_records_with_ids_unique(tmp_path: Path) -> None:
    feeds, days = _feeds(tmp_path)
    for feed in feeds:
        ids: list[str] = []
        sending_days = []
        for day in range(1, days + 1):
            lines = list(feed.lines_for(day))
            if lines:
                sending_days.append(day)
            ids += [orjson.loads(line)["record_id"] for line in lines]
        assert len(ids) == feed.unit.uploaded, feed.unit.name
        assert len(set(ids)) == len(ids)
        assert tuple(sending_days) == feed.unit.upload_days


def test_each_line_is_the_record_of_its_category_s_event_time() -> None:
    unit = _unit(upload_days=(10, 20, 29))
    feed = UnitFeed(unit, "ORG001", date(2024, 2, 1), "320115")
    day = 20
    today = datetime(2024, 2, day, 8, tzinfo=BUSINESS_TZ)
    late = today - timedelta(days=LATE_DELAY_DAYS)
    backlog = datetime(2024, 1, 29, 8, tzinfo=BUSINESS_TZ)  # three days before the month
    found = Counter[str]()
    for line in feed.lines_for(day):
        record = orjson.loads(line)
        form = record.pop("form")
        if record["record_id"].startswith("R"):
            found["rejected"] += 1
            continue
        seed = zlib.crc32(record["record_id"].encode()) % VARIANTS
        (event,) = [event for event in (today, late, backlog)
                    if make_record(form, "ORG001", record["record_id"], event, seed=seed) == record]
        found[{today: "today", late: "late", backlog: "backlog"}[event]] += 1
    allocation = feed.allocation
    assert found == Counter({
        "today": allocation["conforming_out"].get(day, 0) + allocation["conforming_in"].get(day, 0),
        "late": allocation["late_out"].get(day, 0) + allocation["late_in"].get(day, 0),
        "backlog": allocation["backlog"].get(day, 0),
        "rejected": allocation["rejected"].get(day, 0),
    })
    assert found["late"] > 0
    assert found["today"] > 0


def test_rejected_records_cycle_through_one_defect_each(tmp_path: Path) -> None:
    feeds, _ = _feeds(tmp_path)
    feed = feeds[0]
    sent_at = datetime(2024, 2, 10, 12, tzinfo=BUSINESS_TZ)
    event = datetime(2024, 2, 10, 8, tzinfo=BUSINESS_TZ)
    defects = [feed._rejected_record(event, sent_at) for _ in range(5)]
    assert [item.form for item in defects] == ["outpatient_visit", "outpatient_visit", "outpatient_visit",
                                               "patient_master_index", "outpatient_visit"]
    assert defects[0].record["patient_type_code"] == "7"
    assert (defects[1].record["patient_type_code"], defects[1].record["patient_type_name"]) == ("1", "住院")
    assert "visit_no" not in defects[2].record
    assert defects[4].record["visit_time"] == "20240213120000"  # three days after it was sent
    again = feed._rejected_record(event, sent_at)
    assert again.record["patient_type_code"] == "7"  # the sixth starts the cycle again


def test_a_bad_id_number_differs_from_a_valid_one_only_in_its_check_character(tmp_path: Path) -> None:
    feeds, _ = _feeds(tmp_path)
    feed = feeds[0]
    feed._form_cursor["rejected"] = 3
    bad = feed._rejected_record(datetime(2024, 2, 10, 8, tzinfo=BUSINESS_TZ),
                                datetime(2024, 2, 10, 12, tzinfo=BUSINESS_TZ))
    valid = make_record("patient_master_index", feed.org_code, bad.record["record_id"],
                        datetime(2024, 2, 10, 8, tzinfo=BUSINESS_TZ))
    assert bad.record["id_number"][:-1] == valid["id_number"][:-1]
    assert bad.record["id_number"][-1] != valid["id_number"][-1]


def test_a_districts_public_health_records_carry_unique_17_digit_numbers_of_its_area(tmp_path: Path) -> None:
    feeds, days = _feeds(tmp_path)
    district = feeds[0]
    numbers = []
    forms = Counter()
    for day in range(1, days + 1):
        for line in district.lines_for(day):
            record = orjson.loads(line)
            number = record.get("record_no") or record.get("health_record_no")
            if record["form"] in ("health_record", "hypertension_followup", "diabetes_followup"):
                forms[record["form"]] += 1
                numbers.append(number)
    assert forms == Counter(district.unit.public_health)
    assert all(len(number) == 17 and number.startswith("320115") for number in numbers)
    assert len(set(numbers)) == len(numbers)


def test_the_workload_reports_spread_the_months_visits_over_every_day(tmp_path: Path) -> None:
    feeds, days = _feeds(tmp_path)
    hospital = feeds[1]
    reports = [hospital.workload(day, days) for day in range(1, days + 1)]
    assert sum(int(report["outpatient_emergency_visits"]) for report in reports) == 40
    assert sum(int(report["discharges"]) for report in reports) == 6
    assert [report["record_id"] for report in reports[:2]] == ["WL20240201", "WL20240202"]


def test_the_same_plan_gives_the_same_bodies(tmp_path: Path) -> None:
    first, days = _feeds(tmp_path)
    second, _ = _feeds(tmp_path)
    for a, b in zip(first, second, strict=True):
        assert [a.body_for(day, days) for day in (1, 10, 29)] == [b.body_for(day, days) for day in (1, 10, 29)]


def test_templates_keep_only_the_shapes_of_the_event_times_in_use() -> None:
    templates = LineTemplates("ORG001")
    first = datetime(2024, 2, 1, 8, tzinfo=BUSINESS_TZ)
    second = datetime(2024, 2, 2, 8, tzinfo=BUSINESS_TZ)
    list(templates.lines(["outpatient_visit"], ["C000000001"], first))
    list(templates.lines(["outpatient_visit"], ["C000000002"], second))
    templates.keep_only((second,))
    assert list(templates._by_event) == [second]


@pytest.mark.parametrize(("count", "days", "expected"), [
    (10, 3, [4, 3, 3]), (2, 4, [1, 1, 0, 0]), (0, 2, [0, 0]), (29, 29, [1] * 29),
])
def test_bookings_are_spread_over_the_days_remainder_first(count: int, days: int, expected: list[int]) -> None:
    assert spread(count, days) == expected
