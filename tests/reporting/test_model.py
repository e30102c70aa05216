"""BulletinData parses the scenario format exactly and refuses what is not in it."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from cityhealth.reporting.model import BulletinData, HospitalCollection, days_in_month
from cityhealth.reporting.tables import Issue, front_matter, percent_cell, yi


def _document(nanjing_scenario: dict[str, Any], **changes: Any) -> str:
    return json.dumps(nanjing_scenario | changes, ensure_ascii=False)


def _hospital_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "hospital": "南京市胸科医院", "uploaded_records": 657080, "upload_days": 30, "realtime_forms": 6,
        "outpatient_visits": 5890, "discharges": 1122, "outpatient_conformance_basis": 23560,
        "discharge_conformance_basis": 11220, "outpatient_conformance_pct": "29.30",
        "discharge_conformance_pct": "24.60",
    }
    return row | changes


def test_percentages_keep_two_decimals_through_a_round_trip() -> None:
    row = HospitalCollection.model_validate(_hospital_row(outpatient_conformance_pct="0.70"))
    assert row.model_dump(mode="json")["outpatient_conformance_pct"] == "0.70"


@pytest.mark.parametrize("pct", ["78.0", "78", "78.000", 78.0, "seventy"])
def test_a_percentage_not_written_with_two_decimals_is_refused(pct: Any) -> None:
    with pytest.raises(ValidationError, match="percentage"):
        HospitalCollection.model_validate(_hospital_row(outpatient_conformance_pct=pct))


def test_counts_must_be_whole_non_negative_numbers() -> None:
    with pytest.raises(ValidationError, match="uploaded_records"):
        HospitalCollection.model_validate(_hospital_row(uploaded_records=-1))
    with pytest.raises(ValidationError, match="discharges"):
        HospitalCollection.model_validate(_hospital_row(discharges="1122"))


def test_an_unknown_key_is_refused(nanjing_scenario: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="hotlines"):
        BulletinData.from_json(_document(nanjing_scenario, hotlines={}))


def test_a_month_not_written_yyyy_mm_is_refused(nanjing_scenario: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="month"):
        BulletinData.from_json(_document(nanjing_scenario, month="2022-6"))


def test_another_format_is_refused(nanjing_scenario: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="format"):
        BulletinData.from_json(_document(nanjing_scenario, format="cityhealth-scenario/2"))


def test_days_in_month() -> None:
    assert [days_in_month(month) for month in ("2022-06", "2024-02", "2023-02", "2022-12")] == [30, 29, 28, 31]


def test_cumulative_totals_print_in_yi_rounded_half_up() -> None:
    assert yi(15_931_000_000) == "159.31"
    assert yi(15_931_500_000) == "159.32"
    assert yi(15_931_499_999) == "159.31"
    assert yi(0) == "0.00"


def test_a_missing_rate_prints_a_slash_and_zero_prints_zero() -> None:
    from decimal import Decimal

    assert percent_cell(None) == "/"
    assert percent_cell(Decimal("0.00")) == "0.00%"


def test_issue_line_uses_the_publication_year(nanjing: BulletinData) -> None:
    front = front_matter(nanjing, Issue(7, 125, date(2022, 7, 28)))
    assert (front.masthead, front.issue_line, front.publisher_line, front.date_line) == (
        "南京卫生信息化简报", "2022年第7期（总第125期）", "南京市卫生信息中心 编印", "2022年7月28日",
    )


def test_a_december_issue_without_a_date_belongs_to_the_next_year(nanjing: BulletinData) -> None:
    december = nanjing.model_copy(update={"month": "2022-12"})
    assert front_matter(december, Issue(1)).issue_line == "2023年第1期"
    assert front_matter(december, Issue()).issue_line is None
    assert front_matter(december, Issue(total_number=130)).issue_line == "总第130期"
