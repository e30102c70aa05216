"""The month's calls: planned by expected()'s rules, reported as the telephony system reports them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.hotline import EVENTS_PER_REPORT, HotlineDriver
from cityhealth.simulation.plan import CallCell, plan_hotline, plan_month
from cityhealth.simulation.scenario import bundled_scenario, load_scenario
from tests.simulation.scenarios import load, small

NANJING = load_scenario(bundled_scenario("nanjing-2022-06"))
HOTLINE: dict[str, Any] = {
    "calls_by_city": [{"city": "320100", "name": "南京市", "calls": 60},
                      {"city": "320500", "name": "苏州市", "calls": 7}],
    "calls_by_category": {"consultation": 10, "complaint": 2, "phone_booking": 40, "manual_service": 5,
                          "crisis_intervention": 1, "self_service_voice": 2},
}


def test_the_region_citys_calls_are_its_categories_with_one_phone_call_per_phone_booking() -> None:
    plan = plan_month(NANJING, Decimal("0.001"))
    assert plan.hotline is not None
    region = {cell.category: cell.count for cell in plan.hotline.cells if cell.city == "320100"}
    assert region == {"consultation": 54, "complaint": 1, "manual_service": 142, "self_service_voice": 7}
    assert plan.hotline.phone_bookings_follow_bookings
    assert sum(cell.count for cell in plan.bookings if cell.channel == "phone") == 248
    others = {cell.city: 0 for cell in plan.hotline.cells if cell.city != "320100"}
    for cell in plan.hotline.cells:
        if cell.city in others:
            others[cell.city] += cell.count
    assert others == {"320500": 34, "320600": 1}
    assert [line for line, _, _ in plan.hotline.lines] == ["12320-320100", "12320-320500", "12320-320600"]


def test_without_bookings_the_phone_booking_calls_scale_like_the_others(tmp_path: Path) -> None:
    scenario = load(small(hotline=HOTLINE, booking=None), tmp_path)
    hotline = plan_hotline(scenario, Decimal("0.5"))
    assert hotline is not None
    assert not hotline.phone_bookings_follow_bookings
    assert CallCell("320100", "phone_booking", 20) in hotline.cells
    # 7 × 0.5 = 3.5 → 4 calls of Suzhou, shared between consultation and manual service.
    assert [(c.category, c.count) for c in hotline.cells if c.city == "320500"] == [("consultation", 2),
                                                                                    ("manual_service", 2)]


def test_a_scenario_that_books_without_a_hotline_takes_its_phone_bookings_on_the_region_citys_line_alone(
        tmp_path: Path) -> None:
    booking_only = plan_hotline(load(small(), tmp_path), Decimal(1))
    assert booking_only is not None
    assert (booking_only.lines, booking_only.region_city, booking_only.cells) == (
        (("12320-320100", "320100", "南京市"),), "320100", ())
    assert (booking_only.phone_bookings_follow_bookings, booking_only.work_orders) == (True, None)
    assert plan_hotline(load(small(booking=None), tmp_path), Decimal(1)) is None


def test_a_scenario_whose_region_categories_do_not_make_its_calls_is_refused(tmp_path: Path) -> None:
    wrong = HOTLINE | {"calls_by_city": [{"city": "320100", "name": "南京市", "calls": 61}]}
    with pytest.raises(ValidationFailed, match="sum to 60, not to its 61 calls"):
        load(small(hotline=wrong), tmp_path)


class Recorder:
    """Records what the driver sends to one path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bodies: list[dict[str, Any]] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> None:
        assert (method, path) == ("POST", self.path)
        self.bodies.append(kwargs["json"])

    @property
    def reports(self) -> list[list[dict[str, Any]]]:
        return [body["events"] for body in self.bodies]


def _driver(tmp_path: Path, hotline: dict[str, Any]) -> tuple[HotlineDriver, Recorder]:
    scenario = load(small(hotline=hotline), tmp_path)
    simulation: Any = SimpleNamespace(seed=3, month_start=date(2024, 2, 1))
    driver = HotlineDriver(simulation, None, None, plan_month(scenario, Decimal(1)))  # type: ignore[arg-type]
    telephony = Recorder("/api/hotline/call-events")
    driver.telephony = telephony  # type: ignore[assignment]
    driver.agent = "staff:9"
    return driver, telephony


async def test_phone_booking_calls_are_answered_before_the_bookings_and_ended_after(tmp_path: Path) -> None:
    driver, telephony = _driver(tmp_path, HOTLINE)
    ids = await driver.open_calls(date(2024, 2, 5), 3, "staff:4")
    assert ids == [f"sim-20240205-320100-phone_booking-{n}" for n in range(3)]
    (opened,) = telephony.reports
    assert [event["kind"] for event in opened[:4]] == ["start", "ivr", "queue", "answer"]
    assert {event["agent"] for event in opened if event["kind"] == "answer"} == {"staff:4"}
    assert opened[0]["city_line"] == "12320-320100"
    await driver.close_calls(date(2024, 2, 5))
    ended = telephony.reports[1]
    assert [(event["call_id"], event["category"]) for event in ended] == [(i, "phone_booking") for i in ids]
    assert driver.calls == 3


async def test_a_days_calls_go_in_reports_of_whole_calls_within_the_platforms_limit(tmp_path: Path) -> None:
    driver, telephony = _driver(tmp_path, HOTLINE)
    ivr = Recorder("/api/hotline/kb/self-service")
    driver.daily[0] = [(CallCell("320100", "consultation", 0), 600), (CallCell("320100", "self_service_voice", 0), 2),
                       (CallCell("320500", "crisis_intervention", 0), 1)]
    assert await driver.run_day(date(2024, 2, 1)) == 603
    assert len(telephony.reports) == 2  # 600 × 5 + 2 × 3 + 5 events: two reports of at most 2,000
    assert all(len(report) <= EVENTS_PER_REPORT for report in telephony.reports)
    calls: dict[str, list[str]] = {}
    for report in telephony.reports:
        for event in report:
            calls.setdefault(event["call_id"], []).append(event["kind"])
    first, second = ({event["call_id"] for event in report} for report in telephony.reports)
    assert len(calls) == 603
    assert not first & second  # a call's events travel together
    assert [kinds for call_id, kinds in calls.items() if "self_service" in call_id] == [["start", "ivr", "end"]] * 2
    assert ivr.bodies == []  # no IVR client: the scenario asks nothing (see below)
    crisis = next(event for event in telephony.reports[-1] if event["kind"] == "start" and "crisis" in event["call_id"])
    assert crisis["city_line"] == "12320-320500"
    assert calls[crisis["call_id"]] == ["start", "ivr", "queue", "answer", "end"]


async def test_each_self_service_call_puts_its_question_to_the_knowledge_base(tmp_path: Path) -> None:
    driver, _ = _driver(tmp_path, HOTLINE)
    ivr = Recorder("/api/hotline/kb/self-service")
    driver.ivr = ivr  # type: ignore[assignment]
    driver.daily[0] = [(CallCell("320100", "self_service_voice", 0), 2), (CallCell("320100", "complaint", 0), 1)]
    await driver.run_day(date(2024, 2, 1))
    assert [body["utterance_id"] for body in ivr.bodies] == [
        "sim-20240201-320100-self_service_voice-0:q1", "sim-20240201-320100-self_service_voice-1:q1"]
    assert all(body["text"] in driver.questions for body in ivr.bodies)


class DeskAgent:
    """The phone agent at the desk: its open calls listed, each request recorded."""

    def __init__(self, open_calls: dict[str, int]) -> None:
        self.open_calls = open_calls
        self.requests: list[tuple[str, str, Any]] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append((method, path, kwargs.get("json")))
        if path == "/api/hotline/calls":
            answer: Any = [{"id": number, "telephony_call_id": call} for call, number in self.open_calls.items()]
        else:
            answer = {"matches": 1}
        return SimpleNamespace(json=lambda: answer)


async def test_a_phone_booking_is_made_at_the_desk_on_its_call_after_identifying_the_caller(tmp_path: Path) -> None:
    driver, _ = _driver(tmp_path, HOTLINE)
    agent = DeskAgent({"sim-20240205-320100-phone_booking-0": 41, "sim-20240205-320100-phone_booking-1": 42})
    for number in (0, 1):
        await driver.book(f"sim-20240205-320100-phone_booking-{number}", agent,  # type: ignore[arg-type]
                          {"session_id": 7, "id_number": "320102199001010011"}, f"k{number}")
    assert agent.requests == [
        ("GET", "/api/hotline/calls", None),  # the agent's calls, listed once for the day's open ones
        ("POST", "/api/hotline/desk/calls/41/identify", {"id_number": "320102199001010011"}),
        ("POST", "/api/hotline/desk/calls/41/bookings", {"session_id": 7}),
        ("POST", "/api/hotline/desk/calls/42/identify", {"id_number": "320102199001010011"}),
        ("POST", "/api/hotline/desk/calls/42/bookings", {"session_id": 7})]
