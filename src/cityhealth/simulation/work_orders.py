"""The month's work orders, taken in and worked the way the 12345 systems, the hotline and the hospitals would.

The city and the provincial 12345 systems push their orders over HTTP as machine clients, each in its own shape;
a few pushes come twice, as those systems resend, and must stay one order. The hotline's complaint desk answers
the complaint calls and opens one self-received order on each, linked to the call. Each evening (after the day's
calls are reported) the desk dispatches the day's new orders to a hospital of the scenario; the next evening the
hospital's handler replies and the desk closes the order (a 12345 order's result then goes back through the
outbox); the evening after, the desk calls most callers back: mostly satisfied, a few basically satisfied, a few
dissatisfied, which reopens the order to be worked again the next evening. A few 12345 orders are worked only
on the day after their deadline, and so close late. Steps that would fall after the month are not taken.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.security.principals import Role, Scope
from cityhealth.simulation.actors import Actor, Operator, SimulationError
from cityhealth.simulation.plan import MonthPlan, WorkOrderPlan
from cityhealth.simulation.polling import POLL_INTERVAL_S

if TYPE_CHECKING:
    from cityhealth.simulation.driver import Simulation
    from cityhealth.simulation.hotline import HotlineDriver

ORDERS = "/api/hotline/work-orders"
CALLS = "/api/hotline/calls"
COMPLAINT = "complaint"
HANDLING_HOSPITALS = 3  # the hospitals the month's orders are dispatched to, in turn
SENT_TWICE_EVERY = 4  # every 4th push is sent again (the second must find the order already held)
LATE_EVERY = 6  # the 12345 orders numbered 3, 9, 15 … are worked the day after their deadline
# The callback of the n-th order closed, by n % 10; None: the caller could not be reached, no callback.
CALLBACK_OF = ("satisfied", "satisfied", "satisfied", "satisfied", "basically_satisfied", "satisfied",
               "satisfied", "dissatisfied", "satisfied", None)
CITY_TYPES = ("zx", "qz", "ts", "zx")  # 咨询, 求助, 投诉: the city system's order types, in turn
PROVINCE_TYPES = ("CONSULT", "HELP", "COMPLAINT", "CONSULT")
SUBJECTS = ("门诊挂号排队时间较长", "咨询疫苗接种安排", "反映检查报告领取不便", "咨询专家门诊出诊时间")


@dataclass
class Order:
    id: int
    number: int  # the order's place among the month's orders: its callback, whether it is worked late
    source: str
    handler: Actor
    late: bool
    due_at: datetime
    closes: int = 0
    step: int = 0

    def key(self, step: str) -> str:
        self.step += 1
        return f"sim-order-{self.id}-{self.step}-{step}"


@dataclass
class WorkOrderTally:
    """What the simulator did in the month, for the round trip to hold the platform's figures against."""

    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("city_12345", "province_12345", "self_received"), 0))
    pushed_twice: int = 0
    closed: int = 0
    closed_on_time: int = 0
    callbacks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("satisfied", "basically_satisfied", "dissatisfied"), 0))
    results_returned: int = 0  # closes of 12345 orders whose result the outbox has sent


def _evening_days(count: int, days_in_month: int) -> list[int]:
    """The day index of each of `count` orders, spread evenly over the month."""
    return [(number * days_in_month) // count for number in range(count)]


class WorkOrderDriver:
    """The 12345 systems, the hotline's complaint desk and the hospitals' handlers, over the month's evenings."""

    def __init__(self, simulation: Simulation, app: FastAPI, operator: Operator, plan: MonthPlan,
                 hotline: HotlineDriver) -> None:
        self.simulation = simulation
        self.app = app
        self.operator = operator
        self.plan: WorkOrderPlan | None = plan.hotline.work_orders if plan.hotline is not None else None
        self.region_city = plan.hotline.region_city if plan.hotline is not None else ""
        self.days_in_month = plan.days_in_month
        self.month_end = plan.month + timedelta(days=plan.days_in_month - 1)
        self.hotline = hotline
        self.desk: Actor | None = None
        self.systems: dict[str, Actor] = {}
        self.hospitals: list[tuple[int, str, Actor]] = []  # (organization id, code, its handler)
        self.pushes: dict[int, list[str]] = defaultdict(list)  # day index -> the sources of its pushes
        self.agenda: dict[date, list[tuple[str, Order]]] = defaultdict(list)
        self.orders: list[Order] = []
        self.tally = WorkOrderTally()

    async def prepare(self) -> None:
        """The two 12345 systems, the complaint desk (answering the complaint calls) and the hospitals' handlers."""
        if self.plan is None:
            return
        simulation, app, operator = self.simulation, self.app, self.operator
        self.systems = {
            "city_12345": await simulation.machine_client(app, operator, "12345 市级政务服务热线",
                                                          [Scope.HOTLINE_12345_CITY.value]),
            "province_12345": await simulation.machine_client(app, operator, "12345 省级政务服务热线",
                                                              [Scope.HOTLINE_12345_PROVINCE.value])}
        self.desk, subject = await simulation.staff_member(app, operator, Role.HOTLINE_AGENT, "12320 投诉受理坐席")
        self.hotline.answered_by[COMPLAINT] = subject
        for organization in await self._hospitals():
            handler, _ = await simulation.staff_member(app, operator, Role.WORK_ORDER_HANDLER,
                                                       f"{organization['name']} 工单承办人", organization["id"])
            self.hospitals.append((organization["id"], organization["code"], handler))
        self.schedule_pushes()

    def schedule_pushes(self) -> None:
        """Each 12345 system's orders spread evenly over the month's evenings."""
        assert self.plan is not None  # noqa: S101 - only with work orders to drive
        for source, count in (("city_12345", self.plan.city_12345), ("province_12345", self.plan.province_12345)):
            for index in _evening_days(count, self.days_in_month):
                self.pushes[index].append(source)

    async def _hospitals(self) -> list[dict[str, Any]]:
        """The scenario's first hospitals (by its booking table, else its collection table)."""
        scenario = self.simulation.scenario
        names = [row.hospital for row in scenario.booking.by_hospital] if scenario.booking else []
        names += [row.hospital for row in scenario.collection.hospitals] if scenario.collection else []
        chosen = list(dict.fromkeys(names))[:HANDLING_HOSPITALS] or [f"{scenario.region.name}第一人民医院"]
        return [await self.simulation.ensure_organization(self.operator, name, "hospital") for name in chosen]

    async def run_day(self, day: date) -> None:
        """The evening's work: the day's new orders in and dispatched, then the steps due today."""
        if self.plan is None or self.desk is None:
            return
        index = (day - self.simulation.month_start).days
        new = [await self._push(source, day) for source in self.pushes.get(index, [])]
        new += await self._complaints(day)
        for order in new:
            await self._dispatch(order)
            self.agenda[self._work_day(order, day)].append(("work", order))
        for step, order in self.agenda.pop(day, []):
            if step == "callback":
                await self._callback(order, day)
                continue
            if step == "rework":
                await self._dispatch(order)
            await self._work(order, day)

    def _next(self, source: str, order_id: int, handler: Actor, due_at: datetime, late: bool) -> Order:
        order = Order(order_id, len(self.orders), source, handler, late, due_at)
        self.orders.append(order)
        self.tally.received[source] += 1
        return order

    def _work_day(self, order: Order, day: date) -> date:
        """The next evening; for an order to close late, the first evening past its deadline (a midnight)."""
        if order.late:
            return max(day + timedelta(days=1), order.due_at.astimezone(BUSINESS_TZ).date())
        return day + timedelta(days=1)

    async def _push(self, source: str, day: date) -> Order:
        """A 12345 system's push (sent twice now and then); the order it made."""
        number = len(self.orders)
        _, code, handler = self.hospitals[number % len(self.hospitals)]
        late = number % LATE_EVERY == 3
        subject = SUBJECTS[number % len(SUBJECTS)]
        accepted = self.simulation.clock.now() - timedelta(hours=2)
        if source == "city_12345":
            kind = "zx" if late else CITY_TYPES[number % len(CITY_TYPES)]
            body: dict[str, Any] = {"gdbh": f"NJ12345-{day:%Y%m%d}-{number:05d}", "gdlx": kind, "bt": subject,
                                    "nr": f"市民来电{subject}，请承办单位核实处理。", "cbdw": code,
                                    "slsj": accepted.isoformat()}
            path = f"{ORDERS}/intake/city-12345"
        else:
            kind = "CONSULT" if late else PROVINCE_TYPES[number % len(PROVINCE_TYPES)]
            body = {"orderNo": f"JS12345-{day:%Y%m%d}-{number:05d}", "orderType": kind, "title": subject,
                    "content": f"群众来电{subject}，转请承办单位办理并反馈。", "handleOrgCode": code,
                    "acceptTime": accepted.isoformat()}
            path = f"{ORDERS}/intake/province-12345"
        system = self.systems[source]
        taken = (await system.call("POST", path, json=body)).json()
        if number % SENT_TWICE_EVERY == 1:
            again = (await system.call("POST", path, json=body)).json()
            if again["created"] or again["work_order_id"] != taken["work_order_id"]:
                raise SimulationError(f"{source}: a push sent twice made two orders", code="simulation_mismatch")
            self.tally.pushed_twice += 1
        due_at = datetime.fromisoformat(taken["due_at"])
        # Late only when the first evening past the deadline is still in the month.
        late = late and due_at.astimezone(BUSINESS_TZ).date() <= self.month_end
        return self._next(source, taken["work_order_id"], handler, due_at, late)

    async def _complaints(self, day: date) -> list[Order]:
        """One self-received order on each of the day's complaint calls, linked to it."""
        assert self.desk is not None  # noqa: S101 - prepared
        prefix = f"sim-{day:%Y%m%d}-{self.region_city}-{COMPLAINT}-"
        wanted = self.hotline.calls_of(day, self.region_city, COMPLAINT)
        found: list[dict[str, Any]] = []
        before: int | None = None
        while len(found) < wanted:
            params: dict[str, Any] = {"limit": 200} | ({"before_id": before} if before is not None else {})
            page = (await self.desk.call("GET", CALLS, params=params)).json()
            if not page:
                raise SimulationError(f"the complaint desk finds {len(found)} of the {wanted} complaint calls "
                                      f"of {day}", code="simulation_mismatch")
            found += [call for call in page if call["telephony_call_id"].startswith(prefix)]
            before = page[-1]["id"]
        orders = []
        for call in sorted(found, key=lambda call: call["id"]):
            number = len(self.orders)
            hospital_id, _, handler = self.hospitals[number % len(self.hospitals)]
            taken = (await self.desk.call("POST", ORDERS, json={
                "request_key": call["telephony_call_id"], "category": COMPLAINT, "title": "来电投诉医疗服务",
                "content": "来电反映就诊时服务态度欠佳，要求医院核实并答复。", "organization_id": hospital_id,
                "call_id": call["id"]})).json()
            orders.append(self._next("self_received", taken["work_order_id"], handler,
                                     datetime.fromisoformat(taken["due_at"]), late=False))
        return orders

    async def _dispatch(self, order: Order) -> None:
        assert self.desk is not None  # noqa: S101 - prepared
        sent = (await self.desk.call("POST", f"{ORDERS}/{order.id}/dispatch",
                                     json={"request_key": order.key("dispatch")})).json()
        order.due_at = datetime.fromisoformat(sent["due_at"])

    async def _work(self, order: Order, day: date) -> None:
        """The hospital's reply and the desk's close; most callers are called back the next evening."""
        assert self.desk is not None  # noqa: S101 - prepared
        await order.handler.call("POST", f"{ORDERS}/{order.id}/reply", json={
            "request_key": order.key("reply"), "reply": "经核实已整改，并已向来电人说明情况。"})
        await self.desk.call("POST", f"{ORDERS}/{order.id}/close", json={"request_key": order.key("close")})
        order.closes += 1
        self.tally.closed += 1
        self.tally.closed_on_time += self.simulation.clock.now() <= order.due_at
        if order.closes == 1 and CALLBACK_OF[order.number % len(CALLBACK_OF)] is not None:
            self.agenda[day + timedelta(days=1)].append(("callback", order))

    async def _callback(self, order: Order, day: date) -> None:
        assert self.desk is not None  # noqa: S101 - prepared
        satisfaction = CALLBACK_OF[order.number % len(CALLBACK_OF)]
        assert satisfaction is not None  # noqa: S101 - only those called back are on the agenda
        await self.desk.call("POST", f"{ORDERS}/{order.id}/callback", json={
            "request_key": order.key("callback"), "satisfaction": satisfaction})
        self.tally.callbacks[satisfaction] += 1
        if satisfaction == "dissatisfied":  # reopened: dispatched, replied and closed again the next evening
            self.agenda[day + timedelta(days=1)].append(("rework", order))

    async def finish(self, timeout_s: float) -> None:
        """Wait until every close of a 12345 order has had its result returned through the outbox."""
        if self.desk is None:
            return
        owed = [order for order in self.orders if order.source != "self_received" and order.closes]
        deadline = time.monotonic() + timeout_s
        while owed:
            pending = []
            for order in owed:
                detail = (await self.desk.call("GET", f"{ORDERS}/{order.id}")).json()
                if sum(event["kind"] == "result_returned" for event in detail["events"]) < order.closes:
                    pending.append(order)
            self.tally.results_returned += sum(order.closes for order in owed if order not in pending)
            owed = pending
            if owed and time.monotonic() > deadline:
                raise SimulationError(f"{len(owed)} work-order results were not returned to 12345 within "
                                      f"{timeout_s:g} s", code="simulation_outbox_stalled")
            if owed:
                await asyncio.sleep(POLL_INTERVAL_S * 5)
