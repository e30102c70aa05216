"""Scenario files: read and validated, errors naming the field; volumes scaled by r(value × scale)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.scenario import bundled_scenario, load_scenario, round_half_up, scaled
from tests.simulation.scenarios import load, small, write


def test_the_bundled_nanjing_month_loads_with_its_region_and_both_sections() -> None:
    scenario = load_scenario(bundled_scenario("nanjing-2022-06"))
    assert (scenario.month, scenario.region.code, scenario.region.name) == ("2022-06", "320100", "南京市")
    assert len(scenario.areas) == 12
    assert scenario.collection is not None
    assert scenario.booking is not None
    assert scenario.booking.cumulative_at_month_end == 29863286
    assert scenario.collection.cumulative_accepted_at_month_end == 15931000000


def test_an_unknown_bundled_scenario_is_refused_by_name() -> None:
    with pytest.raises(ValidationFailed) as caught:
        bundled_scenario("atlantis-2030-01")
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("scenario", "atlantis-2030-01",
                                                                           "scenario.unknown")


def test_a_file_that_is_not_json_is_refused_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        load_scenario(path)
    assert caught.value.rule == "scenario.readable"
    assert caught.value.value == str(path)


def test_a_missing_file_is_refused_as_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_scenario(tmp_path / "absent.json")
    assert caught.value.rule == "scenario.readable"


def test_another_format_is_refused_naming_the_format_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(small(format="cityhealth-scenario/2"), tmp_path)
    assert (caught.value.field, caught.value.rule) == ("format", "scenario.format")
    assert "cityhealth-scenario/2" in caught.value.message


@pytest.mark.parametrize("month", ["2024-13", "2024-00", "24-02", "2024-2"])
def test_a_month_outside_yyyy_mm_is_refused(tmp_path: Path, month: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(small(month=month), tmp_path)
    assert caught.value.field == "month"


def test_a_percentage_over_100_is_refused_naming_its_row(tmp_path: Path) -> None:
    raw = small()
    raw["collection"]["hospitals"][1]["outpatient_conformance_pct"] = "100.01"
    with pytest.raises(ValidationFailed) as caught:
        load(raw, tmp_path)
    assert caught.value.field == "collection.hospitals.1.outpatient_conformance_pct"
    assert "100.01" in caught.value.message


def test_a_negative_volume_is_refused_naming_its_row(tmp_path: Path) -> None:
    raw = small()
    raw["booking"]["by_hospital"][0]["phone"] = -1
    with pytest.raises(ValidationFailed) as caught:
        load_scenario(write(raw, tmp_path))
    assert caught.value.field == "booking.by_hospital.0.phone"


@pytest.mark.parametrize(("value", "scale", "expected"), [
    (1, "0.5", 1),  # half rounds up, never to even
    (3, "0.5", 2),
    (5, "0.5", 3),
    (1234, "0.01", 12),
    (1250, "0.01", 13),
    (1249, "0.01", 12),
    (201_000_000, "0.001", 201_000),
    (7, "1", 7),
    (0, "0.37", 0),
])
def test_a_volume_scales_to_r_of_value_times_scale(value: int, scale: str, expected: int) -> None:
    assert scaled(value, Decimal(scale)) == expected


def test_round_half_up_works_in_exact_decimals() -> None:
    # 1.005 × 100 is 100.49999… in binary floating point; in decimals it is a half and rounds up.
    assert round_half_up(Decimal("1.005") * 100) == 101
    assert round(1.005 * 100) == 100  # what float arithmetic would have given
    assert [round_half_up(Decimal(v)) for v in ("2.5", "3.5", "2.4999", "0.5")] == [3, 4, 2, 1]
