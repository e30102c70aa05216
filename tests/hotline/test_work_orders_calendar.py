"""The holiday calendar: working days over holidays and adjusted working weekends, the shipped years, a year
set by an operator (API and CLI), and the deadlines counted on it."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cityhealth.cli import app as cli_app
from cityhealth.clock import BUSINESS_TZ, business_date
from cityhealth.config import Environment, Settings
from cityhealth.hotline import holidays
from cityhealth.hotline.holiday_calendar import WorkCalendar, shipped_years
from cityhealth.security.principals import Scope
from tests.factories.security import headers_for, machine
from tests.hotline.work_orders_support import agent

SHIPPED = WorkCalendar.of(shipped_years().values())


def test_every_year_from_2022_to_2027_is_shipped_and_2027_is_marked_provisional() -> None:
    years = shipped_years()
    assert sorted(years) == [2022, 2023, 2024, 2025, 2026, 2027]
    assert {year: entry.status for year, entry in years.items() if entry.status != "official"} == {
        2027: "provisional"}
    assert years[2027].note
    assert "not known" in years[2027].note.lower()


def test_a_holiday_is_not_worked_and_an_adjusted_weekend_is() -> None:
    assert not SHIPPED.is_working_day(date(2022, 10, 3))  # National Day, a Monday
    assert SHIPPED.is_working_day(date(2022, 10, 8))  # the Saturday worked after it
    assert not SHIPPED.is_working_day(date(2022, 6, 18))  # an ordinary Saturday
    assert SHIPPED.is_working_day(date(2022, 6, 17))


def test_a_deadline_counts_across_the_spring_festival() -> None:
    # Fri 28 Jan 2022; Sat 29 and Sun 30 are worked; 31 Jan to 6 Feb off; 7 Feb back.
    moment = datetime(2022, 1, 28, 10, tzinfo=BUSINESS_TZ)
    assert SHIPPED.deadline(moment, 3) == datetime(2022, 2, 8, tzinfo=BUSINESS_TZ)


def test_an_urgent_order_is_due_at_the_end_of_its_day() -> None:
    moment = datetime(2022, 10, 2, 23, 30, tzinfo=BUSINESS_TZ)
    assert SHIPPED.deadline(moment, 0) == datetime(2022, 10, 3, tzinfo=BUSINESS_TZ)


@given(st.datetimes(min_value=datetime(2022, 1, 1), max_value=datetime(2026, 12, 1)),  # noqa: DTZ001 - made aware below
       st.integers(min_value=1, max_value=13))
def test_a_deadline_ends_a_working_day_with_exactly_that_many_working_days_after_the_start(
        naive: datetime, days: int) -> None:
    moment = naive.replace(tzinfo=BUSINESS_TZ)
    due = SHIPPED.deadline(moment, days)
    last = business_date(due) - timedelta(days=1)
    assert SHIPPED.is_working_day(last)
    between = [business_date(moment) + timedelta(days=n) for n in range(1, (last - business_date(moment)).days + 1)]
    assert sum(SHIPPED.is_working_day(day) for day in between) == days


async def test_a_year_without_an_arrangement_counts_weekends_only(app: FastAPI) -> None:
    async with app.state.database.transaction() as session:
        calendar = await holidays.calendar_for(session, datetime(2030, 1, 31, tzinfo=BUSINESS_TZ), 5)
    assert calendar.years_missing == frozenset({2030})
    assert calendar.deadline(datetime(2030, 1, 31, tzinfo=BUSINESS_TZ), 1) == datetime(2030, 2, 2,
                                                                                       tzinfo=BUSINESS_TZ)


async def test_an_administrator_sets_a_year_that_replaces_the_shipped_one(app: FastAPI,
                                                                          client: httpx.AsyncClient) -> None:
    admin = await headers_for(app, machine(Scope.HOTLINE_ADMIN, client_id="calendar-admin"))
    body = {"holidays": [{"day": "2027-02-05", "name": "春节"}, {"day": "2027-02-09", "name": "春节"}],
            "workdays": [{"day": "2027-02-13", "name": "春节调休"}], "note": "as published"}
    saved = await client.put("/api/hotline/holidays/2027", headers=admin, json=body)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["source"], saved.json()["status"]) == ("set", "set")
    read = (await client.get("/api/hotline/holidays/2027", headers=await agent(app))).json()
    assert [day["day"] for day in read["holidays"]] == ["2027-02-05", "2027-02-09"]
    async with app.state.database.transaction() as session:
        calendar = await holidays.calendar_for(session, datetime(2027, 2, 8, tzinfo=BUSINESS_TZ), 1)
    assert not calendar.is_working_day(date(2027, 2, 9))
    assert calendar.is_working_day(date(2027, 2, 8))  # a shipped holiday the set year no longer has
    assert calendar.is_working_day(date(2027, 2, 13))
    shipped = (await client.get("/api/hotline/holidays/2024", headers=await agent(app))).json()
    assert (shipped["source"], len(shipped["workdays"])) == ("shipped", 8)


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"holidays": [{"day": "2026-01-01", "name": "元旦"}], "workdays": []}, "holidays[0].day",
     "hotline.holidays.in_year"),
    ({"holidays": [{"day": "2027-01-01", "name": "元旦"}], "workdays": [{"day": "2027-01-01", "name": "x"}]},
     "workdays[0].day", "hotline.holidays.once"),
    ({"holidays": [], "workdays": [{"day": "2027-01-04", "name": "x"}]}, "workdays[0].day",
     "hotline.holidays.workday_weekend"),
])
async def test_a_bad_year_is_refused_naming_the_day(app: FastAPI, client: httpx.AsyncClient, body: dict[str, object],
                                                    field: str, rule: str) -> None:
    admin = await headers_for(app, machine(Scope.HOTLINE_ADMIN, client_id="calendar-admin"))
    refused = await client.put("/api/hotline/holidays/2027", headers=admin, json=body)
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["rule"]) == (field, rule)
    assert (await client.put("/api/hotline/holidays/2027", headers=await agent(app), json=body)).status_code == 403


def test_an_operator_sets_a_year_from_the_command_line(database_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    source = tmp_path / "2028.json"
    source.write_text(json.dumps({"holidays": [{"day": "2028-01-01", "name": "元旦"}], "workdays": []}), "utf-8")
    runner = CliRunner()
    saved = runner.invoke(cli_app, ["hotline", "set-holidays", "2028", "--file", str(source)])
    assert saved.exit_code == 0, saved.output
    shown = runner.invoke(cli_app, ["hotline", "holidays", "2028"])
    assert json.loads(shown.output)["holidays"] == [{"day": "2028-01-01", "name": "元旦"}]
    bad = runner.invoke(cli_app, ["hotline", "set-holidays", "2029", "--file", str(source)])
    assert bad.exit_code == 1
    assert "holidays[0].day" in bad.output


def test_deadlines_are_configurable_only_within_the_domains_ranges() -> None:
    assert Settings(env=Environment.TEST, hotline_complaint_days=13).hotline_complaint_days == 13
    with pytest.raises(ValueError, match="hotline_complaint_days"):
        Settings(env=Environment.TEST, hotline_complaint_days=9)
    with pytest.raises(ValueError, match="hotline_consultation_days"):
        Settings(env=Environment.TEST, hotline_consultation_days=6)
