"""From a scenario and a scale to the month's counts: every figure of the scenario reproduced exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.plan import (
    BookingCell,
    RateTarget,
    _upload_days,
    plan_bookings,
    plan_month,
    plan_unit,
)
from cityhealth.simulation.scenario import HospitalRow, bundled_scenario, load_scenario, scaled
from tests.simulation.scenarios import load, small

NANJING = load_scenario(bundled_scenario("nanjing-2022-06"))
SCALES = ("0.0005", "0.001", "0.01", "0.37", "1")


def _hospital(**fields: object) -> HospitalRow:
    row = {"hospital": "测试医院", "uploaded_records": 1000, "upload_days": 10, "realtime_forms": 11,
           "outpatient_visits": 10, "discharges": 1, **fields}
    return HospitalRow.model_validate(row)


@pytest.mark.parametrize(("count", "days", "expected"), [
    (1, 30, (30,)),
    (2, 30, (15, 30)),
    (3, 31, (11, 21, 31)),
    (4, 29, (8, 15, 22, 29)),
    (30, 30, tuple(range(1, 31))),
    (0, 28, ()),
])
def test_upload_days_are_spread_over_the_month_ending_on_its_last_day(count: int, days: int,
                                                                       expected: tuple[int, ...]) -> None:
    assert _upload_days(count, days) == expected


@pytest.mark.parametrize("scale", SCALES)
def test_every_unit_sends_exactly_its_uploaded_records_accepted_or_rejected(scale: str) -> None:
    plan = plan_month(NANJING, Decimal(scale))
    assert NANJING.collection is not None
    rows = [*NANJING.collection.districts, *NANJING.collection.hospitals]
    assert len(plan.units) == len(rows)
    for row, unit in zip(rows, plan.units, strict=True):
        bases = sum(rate.basis for rate in (unit.outpatient, unit.inpatient) if rate)
        assert unit.uploaded == max(scaled(row.uploaded_records, Decimal(scale)), row.upload_days,
                                    row.realtime_forms, bases), unit.name
        assert unit.accepted + unit.rejected == unit.uploaded, unit.name
        assert len(unit.upload_days) == row.upload_days
        assert len(unit.forms) == row.realtime_forms
        assert unit.visits == scaled(row.outpatient_visits, Decimal(scale))


@pytest.mark.parametrize("scale", SCALES)
def test_conformance_rates_are_recomputed_on_the_scaled_basis(scale: str) -> None:
    plan = plan_month(NANJING, Decimal(scale))
    assert NANJING.collection is not None
    rows = [*NANJING.collection.districts, *NANJING.collection.hospitals]
    for row, unit in zip(rows, plan.units, strict=True):
        if row.outpatient_conformance_basis is None:
            assert unit.outpatient is None
            continue
        assert unit.outpatient is not None
        assert row.outpatient_conformance_pct is not None
        basis = max(1, scaled(row.outpatient_conformance_basis, Decimal(scale)))
        assert unit.outpatient.basis == basis
        # The rate printed from the plan's counts is the scenario's, to the hundredth, wherever it can be.
        wanted = Decimal(row.outpatient_conformance_pct)
        printed = (Decimal(unit.outpatient.conforming) * 100 / basis).quantize(Decimal("0.01"))
        assert abs(printed - wanted) <= Decimal(50) / basis + Decimal("0.005")


def test_a_unit_enrolled_for_both_groups_receives_visits_and_discharges_first() -> None:
    unit = plan_unit(_hospital(realtime_forms=4, outpatient_conformance_basis=100, outpatient_conformance_pct="90.00",
                               discharge_conformance_basis=10, discharge_conformance_pct="50.00"), Decimal(1), 30)
    assert unit.forms == ("2", "10", "1", "3")
    assert unit.outpatient == RateTarget(100, 90)
    assert unit.inpatient == RateTarget(10, 5)


def test_one_accepted_form_cannot_hold_both_groups() -> None:
    row = _hospital(realtime_forms=1, outpatient_conformance_basis=100, outpatient_conformance_pct="90.00",
                    discharge_conformance_basis=10, discharge_conformance_pct="50.00")
    with pytest.raises(ValidationFailed) as caught:
        plan_unit(row, Decimal(1), 30)
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("realtime_forms", 1, "scenario.infeasible")


def test_records_uploaded_on_no_day_are_infeasible() -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan_unit(_hospital(upload_days=0), Decimal(1), 30)
    assert (caught.value.field, caught.value.rule) == ("upload_days", "scenario.infeasible")


def test_a_unit_with_no_accepted_form_rejects_everything_it_sends() -> None:
    unit = plan_unit(_hospital(realtime_forms=0, uploaded_records=57), Decimal(1), 30)
    assert (unit.forms, unit.rejected, unit.accepted, unit.uploaded) == ((), 57, 0, 57)


def test_two_percent_of_the_records_outside_the_bases_are_rejected() -> None:
    unit = plan_unit(_hospital(uploaded_records=1100, outpatient_conformance_basis=100,
                               outpatient_conformance_pct="90.00"), Decimal(1), 30)
    assert unit.rejected == 20  # r(1000 × 0.02)
    assert unit.backlog_accepted == 980


def test_a_district_sends_public_health_records_within_its_cumulative_figures(tmp_path: Path) -> None:
    plan = plan_month(load(small(), tmp_path), Decimal(1))
    district = plan.units[0]
    assert district.area_code == "320115"
    assert district.health_records_target == {"health_record": 300, "hypertension_followup": 40,
                                              "diabetes_followup": 20}
    # (400 - 120 in the bases - 6 rejected - 2 forms needing a record) // 10 = 27, a third each, at most the target.
    assert district.public_health == {"health_record": 9, "hypertension_followup": 9, "diabetes_followup": 9}
    assert district.rejected == 6
    assert district.accepted + district.rejected == 400


@pytest.mark.parametrize(("month", "days"), [("2024-02", 29), ("2023-02", 28), ("2022-06", 30), ("2021-12", 31)])
def test_any_month_is_planned_with_its_own_days(tmp_path: Path, month: str, days: int) -> None:
    plan = plan_month(load(small(month=month), tmp_path), Decimal(1))
    assert plan.days_in_month == days
    assert plan.month.isoformat() == f"{month}-01"
    assert plan.units[1].upload_days[-1] == days  # a unit's upload days end on the month's last
    assert len(plan.units[1].upload_days) == 28


def test_more_upload_days_than_the_month_has_are_infeasible() -> None:
    # A set of days would silently have dropped the 29th: the bulletin would print fewer days than asked.
    with pytest.raises(ValidationFailed) as caught:
        plan_unit(_hospital(upload_days=29), Decimal(1), 28)
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("upload_days", 29, "scenario.infeasible")


@pytest.mark.parametrize("scale", ["0", "-0.1", "1.01", "2"])
def test_a_scale_outside_zero_to_one_is_refused(scale: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan_month(NANJING, Decimal(scale))
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("scale", scale, "scale.range")


def test_a_month_accepting_more_than_its_cumulative_total_is_infeasible(tmp_path: Path) -> None:
    raw = small()
    raw["collection"]["cumulative_accepted_at_month_end"] = 100
    with pytest.raises(ValidationFailed) as caught:
        plan_month(load(raw, tmp_path), Decimal(1))
    assert caught.value.field == "collection.cumulative_accepted_at_month_end"


@pytest.mark.parametrize("scale", SCALES)
def test_bookings_reproduce_both_booking_tables_exactly(scale: str) -> None:
    factor = Decimal(scale)
    cells = plan_bookings(NANJING, factor, {})
    assert NANJING.booking is not None
    for row in NANJING.booking.by_hospital:
        for channel in ("online_12320", "phone", "clinic", "third_party"):
            made = sum(c.count for c in cells if c.hospital == row.hospital and c.channel == channel)
            assert made == scaled(getattr(row, channel), factor), (row.hospital, channel)
    for app_row in NANJING.booking.by_app:
        assert sum(c.count for c in cells if c.app == app_row.app) == scaled(app_row.bookings, factor), app_row.app
    assert all(cell.count > 0 for cell in cells)


def test_a_third_party_app_books_in_third_party_cells_and_the_rest_is_the_hospitals_own(tmp_path: Path) -> None:
    raw = small()
    raw["booking"]["by_app"] = [{"app": "健康测试客户端", "bookings": 25}, {"app": "第三方平台", "bookings": 4}]
    cells = plan_bookings(load(raw, tmp_path), Decimal(1), {"第三方平台": "third_party"})
    assert cells == (
        BookingCell("测试第一医院", "online_12320", "健康测试客户端", 25),
        BookingCell("测试第一医院", "online_12320", None, 5),
        BookingCell("测试第一医院", "phone", None, 20),
        BookingCell("测试第一医院", "clinic", None, 15),
        BookingCell("测试第一医院", "third_party", "第三方平台", 4),
        BookingCell("测试第一医院", "third_party", None, 6),
    )


def test_app_bookings_beyond_the_hospitals_online_and_third_party_are_infeasible(tmp_path: Path) -> None:
    raw = small()
    raw["booking"]["by_app"] = [{"app": "健康测试客户端", "bookings": 41}]
    with pytest.raises(ValidationFailed) as caught:
        plan_bookings(load(raw, tmp_path), Decimal(1), {})
    assert (caught.value.field, caught.value.rule) == ("booking.by_app", "scenario.infeasible")
    assert "健康测试客户端" in caught.value.message


def test_a_scenario_without_bookings_plans_none(tmp_path: Path) -> None:
    plan = plan_month(load(small(booking=None), tmp_path), Decimal(1))
    assert (plan.bookings, plan.bookings_in_month, plan.bookings_cumulative_target) == ((), 0, 0)


def test_the_month_plan_totals_follow_from_its_units_and_cells(tmp_path: Path) -> None:
    plan = plan_month(load(small(), tmp_path), Decimal("0.5"))
    assert plan.accepted_in_month == sum(unit.accepted for unit in plan.units)
    assert plan.bookings_in_month == 38  # r(15)+r(10)+r(7.5)+r(5) = 15 + 10 + 8 + 5
    assert plan.bookings_cumulative_target == 500
    assert plan.cumulative_accepted_target == 2500
