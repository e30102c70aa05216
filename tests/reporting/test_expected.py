"""expected(scenario, scale) follows scenario-format.md; the numbers below are worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reporting.expected import expected


def _hospital(document: dict[str, Any], table: str, name: str) -> dict[str, Any]:
    section, rows = table.split(".")
    key = "hospital" if rows in ("by_hospital", "hospitals") else "name"
    return next(row for row in document[section][rows] if row[key] == name)


def test_scale_one_returns_the_scenario_unchanged(nanjing_scenario: dict[str, Any]) -> None:
    assert expected(nanjing_scenario, 1) == nanjing_scenario


def test_expected_does_not_modify_its_input(nanjing_scenario: dict[str, Any]) -> None:
    before = repr(nanjing_scenario)
    expected(nanjing_scenario, "0.001")
    assert repr(nanjing_scenario) == before


@pytest.mark.parametrize("scale", [0, "-0.1", "1.5"])
def test_scale_outside_zero_to_one_is_refused(nanjing_scenario: dict[str, Any], scale: Any) -> None:
    with pytest.raises(ValueError, match="scale"):
        expected(nanjing_scenario, scale)


def test_booking_volumes_scale_half_up(nanjing_scenario: dict[str, Any]) -> None:
    result = expected(nanjing_scenario, "0.001")
    # 7875 → 7.875 → 8; 98431 → 98.431 → 98; 130217 → 130.217 → 130; 3775 → 3.775 → 4
    assert _hospital(result, "booking.by_hospital", "南京市儿童医院") == {
        "hospital": "南京市儿童医院", "online_12320": 8, "phone": 98, "clinic": 130, "third_party": 4,
    }
    assert result["booking"]["by_app"][0] == {"app": "健康南京客户端", "bookings": 33}  # 32.583
    assert result["booking"]["cumulative_at_month_end"] == 29863  # 29863.286


def test_exact_halves_round_up_not_to_even(nanjing_scenario: dict[str, Any]) -> None:
    result = expected(nanjing_scenario, "0.5")
    assert _hospital(result, "booking.by_hospital", "南京市玄武医院")["online_12320"] == 1  # 0.5 → 1
    assert _hospital(result, "booking.by_hospital", "南京市职业病防治院")["online_12320"] == 3  # 2.5 → 3


def test_hotline_sums_stay_sums(nanjing_scenario: dict[str, Any]) -> None:
    hotline = expected(nanjing_scenario, "0.001")["hotline"]
    # Phone bookings are the scaled phone column: 98 + 109 + 40 + 1 (1145 → 1.145); every other row rounds to 0.
    assert hotline["calls_by_category"] == {
        "consultation": 54, "complaint": 1, "phone_booking": 248, "manual_service": 142,
        "crisis_intervention": 0, "self_service_voice": 7,
    }
    assert hotline["calls_by_city"] == [
        {"city": "320100", "name": "南京市", "calls": 54 + 1 + 248 + 142 + 0 + 7},
        {"city": "320500", "name": "苏州市", "calls": 34},
        {"city": "320600", "name": "南通市", "calls": 1},
    ]
    assert hotline["work_orders"] == {"city_12345": 7, "province_12345": 2, "self_received": 1}


def test_telemed_volumes_scale_and_structure_does_not(nanjing_scenario: dict[str, Any]) -> None:
    telemed = expected(nanjing_scenario, "0.001")["telemed"]
    assert telemed["ecg"]["cases_month"] == 77
    assert telemed["ecg"]["consultations_month"] == 0
    assert telemed["ecg"]["top_uploaders"][0] == {"hospital": "江苏省人民医院", "count": 33}
    assert telemed["imaging"]["images_month"] == 92134
    assert telemed["consultation"]["consultations_cumulative"] == 0
    assert telemed["ecg"]["members"] == 138
    assert telemed["consultation"]["members_by_kind"] == nanjing_scenario["telemed"]["consultation"]["members_by_kind"]
    assert telemed["lab"]["areas_covered"] == 9
    assert telemed["pathology"] == nanjing_scenario["telemed"]["pathology"]


def test_collection_rates_are_recomputed_on_the_scaled_basis(nanjing_scenario: dict[str, Any]) -> None:
    jiangning = _hospital(expected(nanjing_scenario, "0.001"), "collection.districts", "江宁区")
    # outpatient basis 3105840 → 3106; 78.00% of it → r(2422.68) = 2423; 2423 / 3106 = 78.0103% → "78.01"
    # discharge basis 56670 → 57; 62.00% → r(35.34) = 35; 35 / 57 = 61.4035% → "61.40"
    assert jiangning == {
        "area": "320115", "name": "江宁区", "uploaded_records": 13467, "upload_days": 30, "realtime_forms": 6,
        "outpatient_visits": 776, "discharges": 6,
        "outpatient_conformance_basis": 3106, "discharge_conformance_basis": 57,
        "outpatient_conformance_pct": "78.01", "discharge_conformance_pct": "61.40",
        "health_records_cumulative": {"basic": 940, "hypertension": 91, "diabetes": 33},
    }


def test_a_basis_never_scales_below_one(nanjing_scenario: dict[str, Any]) -> None:
    unit = _hospital(expected(nanjing_scenario, "0.001"), "collection.hospitals", "南京医科大学第四附属医院")
    # discharge basis 173 → 0.173 → 0 → floor 1; 5.20% of 1 → r(0.052) = 0 → "0.00"
    assert (unit["discharge_conformance_basis"], unit["discharge_conformance_pct"]) == (1, "0.00")
    # outpatient basis 370832 → 371; 6.50% → r(24.115) = 24; 24 / 371 = 6.469% → "6.47"
    assert (unit["outpatient_conformance_basis"], unit["outpatient_conformance_pct"]) == (371, "6.47")


def test_null_rates_stay_null(nanjing_scenario: dict[str, Any]) -> None:
    qixia = _hospital(expected(nanjing_scenario, "0.001"), "collection.districts", "栖霞区")
    assert (qixia["discharge_conformance_basis"], qixia["discharge_conformance_pct"]) == (None, None)


def test_uploaded_records_respect_the_feasibility_floor(nanjing_scenario: dict[str, Any]) -> None:
    unit = _hospital(expected(nanjing_scenario, "0.001"), "collection.hospitals", "南京市职业病防治院")
    # 22429 → 22, but it uploaded on 30 days: at least 30 records. Bases 3916 → 4 and 694 → 1.
    assert unit["uploaded_records"] == 30
    assert (unit["outpatient_conformance_basis"], unit["outpatient_conformance_pct"]) == (4, "100.00")
    assert (unit["discharge_conformance_basis"], unit["discharge_conformance_pct"]) == (1, "100.00")


def test_collection_structure_does_not_scale(nanjing_scenario: dict[str, Any]) -> None:
    result = expected(nanjing_scenario, "0.001")["collection"]
    source = nanjing_scenario["collection"]
    assert result["forms_total"] == 11
    assert [(u["upload_days"], u["realtime_forms"]) for u in result["hospitals"]] == [
        (u["upload_days"], u["realtime_forms"]) for u in source["hospitals"]
    ]
    assert result["cumulative_accepted_at_month_end"] == 15931000  # 15931000000 × 0.001
