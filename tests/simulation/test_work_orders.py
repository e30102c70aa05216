"""The month's work orders: planned by expected()'s rules, pushed by both 12345 systems (a few twice), one
self-received order on each complaint call, and each worked through dispatch, reply, close and callback."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.simulation.plan import WorkOrderPlan, plan_hotline, plan_month
from cityhealth.simulation.scenario import bundled_scenario, load_scenario
from cityhealth.simulation.work_orders import ORDERS, WorkOrderDriver
from tests.simulation.scenarios import load, small

NANJING = load_scenario(bundled_scenario("nanjing-2022-06"))
HOTLINE: dict[str, Any] = {
    "calls_by_city": [{"city": "320100", "name": "南京市", "calls": 60}],
    "calls_by_category": {"consultation": 10, "complaint": 3, "phone_booking": 40, "manual_service": 5,
                          "crisis_intervention": 1, "self_service_voice": 1},
    "work_orders": {"city_12345": 12, "province_12345": 5, "self_received": 3},
}
FEBRUARY = date(2024, 2, 1)
DUE_DAYS = 4  # the fake platform's deadline: the midnight four days after receipt


def test_the_orders_scale_and_the_self_received_ones_are_the_complaint_calls() -> None:
    plan = plan_month(NANJING, Decimal("0.001"))
    assert plan.hotline is not None
    assert plan.hotline.work_orders == WorkOrderPlan(city_12345=7, province_12345=2, self_received=1)
    complaints = sum(cell.count for cell in plan.hotline.cells if cell.category == "complaint")
    assert plan.hotline.work_orders.self_received == complaints


def test_a_scenario_without_work_orders_plans_none(tmp_path: Path) -> None:
    hotline = {key: value for key, value in HOTLINE.items() if key != "work_orders"}
    plan = plan_hotline(load(small(hotline=hotline), tmp_path), Decimal(1))
    assert plan is not None
    assert plan.work_orders is None


class Platform:
    """The work-order API as the driver sees it: every request recorded with the simulated day it came on."""

    def __init__(self, clock: SimulatedClock, calls: list[dict[str, Any]]) -> None:
        self.clock = clock
        self.calls = calls  # the complaint desk's calls, newest first
        self.held: dict[str, int] = {}  # intake key -> order id
        self.steps: list[tuple[str, int, date]] = []
        self.pushes = 0
        self.bodies: dict[int, dict[str, Any]] = {}

    def _due(self) -> str:
        day = self.clock.now().astimezone(BUSINESS_TZ).date() + timedelta(days=DUE_DAYS)
        return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ).isoformat()

    def actor(self, name: str) -> Any:
        async def call(method: str, path: str, **kwargs: Any) -> Any:
            answer = self.answer(name, method, path, kwargs)
            return SimpleNamespace(json=lambda: answer)

        return SimpleNamespace(call=call)

    def answer(self, actor: str, method: str, path: str, kwargs: dict[str, Any]) -> Any:
        today = self.clock.now().astimezone(BUSINESS_TZ).date()
        body = kwargs.get("json") or {}
        if method == "GET" and path == "/api/hotline/calls":
            return self.calls
        if method == "POST" and (path.startswith(f"{ORDERS}/intake/") or path == ORDERS):
            self.pushes += path != ORDERS
            key = body.get("gdbh") or body.get("orderNo") or body["request_key"]
            created = key not in self.held
            order_id = self.held.setdefault(key, len(self.held) + 1)
            self.bodies[order_id] = body | {"system": actor}
            return {"work_order_id": order_id, "created": created, "due_at": self._due()}
        order_id, step = int(path.split("/")[4]), path.split("/")[5]
        self.steps.append((step, order_id, today))
        return {"due_at": self._due(), "events": []}


async def test_the_months_orders_are_pushed_created_on_their_calls_and_worked_to_their_callbacks(
        tmp_path: Path) -> None:
    scenario = load(small(hotline=HOTLINE), tmp_path)
    clock = SimulatedClock(datetime.combine(FEBRUARY, time(8), tzinfo=BUSINESS_TZ))
    simulation: Any = SimpleNamespace(seed=3, month_start=FEBRUARY, clock=clock, scenario=scenario)
    hotline: Any = SimpleNamespace(calls_of=lambda day, city, category: 1 if day.day in (2, 9, 28) else 0)
    driver = WorkOrderDriver(simulation, None, None, plan_month(scenario, Decimal(1)), hotline)  # type: ignore[arg-type]
    calls = [{"id": 100 + day, "telephony_call_id": f"sim-202402{day:02d}-320100-complaint-0"} for day in (28, 9, 2)]
    platform = Platform(clock, calls)
    driver.desk = platform.actor("desk")
    driver.systems = {"city_12345": platform.actor("city"), "province_12345": platform.actor("province")}
    driver.hospitals = [(7, "H-7", platform.actor("handler-7")), (8, "H-8", platform.actor("handler-8"))]
    driver.schedule_pushes()
    for day in (FEBRUARY + timedelta(days=n) for n in range(29)):
        clock.set(datetime.combine(day, time(22), tzinfo=BUSINESS_TZ))
        await driver.run_day(day)

    done = driver.tally
    assert done.received == {"city_12345": 12, "province_12345": 5, "self_received": 3}
    assert len(platform.held) == 20  # the pushes sent twice made no second order
    assert platform.pushes == 17 + done.pushed_twice
    assert done.pushed_twice == 5
    linked = sorted(body["call_id"] for body in platform.bodies.values() if "call_id" in body)
    assert linked == [102, 109, 128]  # one complaint order on each complaint call, made by the desk
    assert all(body["system"] == "desk" for body in platform.bodies.values() if "call_id" in body)
    assert {body["cbdw"] for body in platform.bodies.values() if "cbdw" in body} == {"H-7", "H-8"}

    by_order: dict[int, list[tuple[str, date]]] = {}
    for step, order_id, day in platform.steps:
        by_order.setdefault(order_id, []).append((step, day))
    # An order of the 2nd: dispatched that evening, replied and closed the next, called back the one after.
    first = by_order[platform.held["sim-20240202-320100-complaint-0"]]
    assert [step for step, _ in first][:4] == ["dispatch", "reply", "close", "callback"]
    assert [day.day for _, day in first][:4] == [2, 3, 3, 4]
    answers = Counter(step for step, _, _ in platform.steps)
    assert answers["close"] == done.closed
    assert answers["callback"] == sum(done.callbacks.values())
    assert done.callbacks["dissatisfied"] >= 1
    assert done.callbacks["basically_satisfied"] >= 1
    # The dissatisfied are dispatched, replied and closed again the evening after their callback.
    assert answers["dispatch"] == len(platform.held) + done.callbacks["dissatisfied"]
    # The late ones are closed on the evening of their deadline's midnight, past it; the others the next evening.
    assert done.closed - done.closed_on_time > 0
    late = [order_id for order_id, steps in by_order.items()
            if [day for step, day in steps if step == "close"][:1] == [steps[0][1] + timedelta(days=DUE_DAYS)]]
    assert len(late) == done.closed - done.closed_on_time
    # Nothing is worked after the month: an order of its last evening is only dispatched.
    assert max(day for _, _, day in platform.steps) == date(2024, 2, 29)
