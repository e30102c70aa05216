"""The month's 12320 calls, reported as the call centre's telephony system (CTI) would report them.

Each city of the province has its line; every call of the plan is reported through the telephony interface
(`POST /api/hotline/call-events`, in batches of whole calls) as its events: start (line, caller), the IVR node,
and, unless the caller served themselves by voice, the queue, the agent's answer, and the end with the
category and the outcome. A crisis-intervention call thereby opens its follow-up, as the platform's rule says.
A self-service voice call's question goes to the knowledge base as the IVR sends it (one question each, from
the starter set's labelled questions), which gives the month's self-service answer rate.

Phone-booking calls go with the phone bookings, one call per booking: the day's calls are opened (answered by
the agent who books) before the bookings are made and ended after; on each open call the agent identifies the
caller at the desk and books for them there, so that every phone booking is linked to its call.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline.knowledge_starter import labelled_questions
from cityhealth.security.principals import Scope
from cityhealth.simulation.actors import Actor, Operator, SimulationError
from cityhealth.simulation.plan import CallCell, MonthPlan, spread

if TYPE_CHECKING:
    from cityhealth.simulation.driver import Simulation

TELEPHONY_SCOPES = [Scope.HOTLINE_TELEPHONY.value]
IVR_SCOPES = [Scope.HOTLINE_SELF_SERVICE.value]
REPORT_PATH = "/api/hotline/call-events"
SELF_SERVICE_PATH = "/api/hotline/kb/self-service"
DESK_PATH = "/api/hotline/desk"
CALLS_PATH = "/api/hotline/calls"
SELF_SERVICE = "self_service_voice"
EVENTS_PER_REPORT = 2_000  # the platform's limit per report (hotline.schemas.MAX_EVENTS_PER_REPORT)
# The calls of a day start between 07:00 and 22:00; the phone-booking calls in the hour before bookings open.
DAY_OPENS, DAY_CLOSES = time(7, 0), time(22, 0)
BOOKING_RUSH = time(8, 0)
OUTCOME = {SELF_SERVICE: "self_served"}
QUEUE = {"crisis_intervention": "crisis", "complaint": "complaints", "phone_booking": "booking"}
HOTLINE_SEED_OFFSET = 12320  # the hotline's own random stream: adding calls leaves the bookings' draws alone

Event = dict[str, Any]


class HotlineDriver:
    """Registers the province's lines, then reports each day's calls; also the phone line of the bookings."""

    def __init__(self, simulation: Simulation, app: FastAPI, operator: Operator, plan: MonthPlan) -> None:
        self.simulation = simulation
        self.app = app
        self.operator = operator
        self.plan = plan.hotline
        self.days_in_month = plan.days_in_month
        self.random = random.Random(simulation.seed + HOTLINE_SEED_OFFSET)  # noqa: S311 - synthetic data
        self.telephony: Actor | None = None
        self.ivr: Actor | None = None
        self.questions = [question.question for question in labelled_questions()]
        self.agent = ""  # the staff subject the telephony names as answering the calls that book nothing
        self.answered_by: dict[str, str] = {}  # a category's own desk, when it has one (the complaint desk)
        self.daily: list[list[tuple[CallCell, int]]] = [[] for _ in range(plan.days_in_month)]
        self._open_ends: dict[date, list[Event]] = defaultdict(list)  # the phone calls' end events, by day
        self._desk_ids: dict[str, int] = {}  # the open phone calls' platform ids, by telephony id
        self.calls = 0

    async def prepare(self) -> None:
        """The province's city lines, the telephony client, an agent; every call cell spread over the month."""
        if self.plan is None:
            return
        for line, city, name in self.plan.lines:
            await self.operator.call("PUT", f"/api/hotline/lines/{line}", json={"city_code": city, "city_name": name})
        self.telephony = await self.simulation.machine_client(self.app, self.operator, "12320 话务平台 CTI",
                                                              TELEPHONY_SCOPES)
        _, self.agent = await self.simulation.hotline_agent(self.app, self.operator)
        if any(cell.category == SELF_SERVICE for cell in self.plan.cells):
            self.ivr = await self.simulation.machine_client(self.app, self.operator, "12320 语音自助 IVR", IVR_SCOPES)
        for cell in self.plan.cells:
            for index, count in enumerate(spread(cell.count, self.days_in_month)):
                if count:
                    self.daily[index].append((cell, count))

    async def open_calls(self, day: date, count: int, agent: str) -> list[str]:
        """The day's phone-booking calls up to the agent's answer; their ids, one for each booking to make."""
        if self.plan is None or count == 0:
            return []
        line = self.plan.line_of(self.plan.region_city)
        rush = datetime.combine(day, BOOKING_RUSH, tzinfo=BUSINESS_TZ)
        events: list[list[Event]] = []
        ids: list[str] = []
        for number in range(count):
            call_id = f"sim-{day:%Y%m%d}-{self.plan.region_city}-phone_booking-{number}"
            start = rush + timedelta(seconds=(number * 3600) // count)
            *opening, end = self._call(call_id, line, start, "phone_booking", agent)
            events.append(opening)
            self._open_ends[day].append(end)
            ids.append(call_id)
        await self._report(events)
        return ids

    async def book(self, call_id: str, agent: Actor, body: dict[str, Any], key: str) -> None:
        """One phone booking, made by the agent at the desk on the open call `call_id` (the telephony's id).

        The agent identifies the caller within the call (by ID number), then books for them: channel phone, the
        booking linked to the call, so that the month's phone bookings and phone-booking calls reconcile.
        """
        desk_id = await self._desk_call(agent, call_id)
        found = (await agent.call("POST", f"{DESK_PATH}/calls/{desk_id}/identify",
                                  json={"id_number": body["id_number"]})).json()
        if found["matches"] != 1:
            raise SimulationError(f"the desk found {found['matches']} residents for the caller of {call_id}",
                                  code="simulation_mismatch")
        await agent.call("POST", f"{DESK_PATH}/calls/{desk_id}/bookings", json={"session_id": body["session_id"]},
                         headers={"Idempotency-Key": key})

    async def _desk_call(self, agent: Actor, call_id: str) -> int:
        """The platform's id of one of the agent's open calls.

        The desk lists an agent's latest 20 open calls; the simulator opens a whole morning's at once, so the ids
        come from the agent's own calls, newest first, a page at a time.
        """
        before: int | None = None
        while call_id not in self._desk_ids:
            params: dict[str, Any] = {"limit": 200} | ({"before_id": before} if before is not None else {})
            calls = (await agent.call("GET", CALLS_PATH, params=params)).json()
            if not calls:
                raise SimulationError(f"call {call_id} is not among the agent's calls", code="simulation_mismatch")
            self._desk_ids.update({call["telephony_call_id"]: call["id"] for call in calls})
            before = calls[-1]["id"]
        return self._desk_ids[call_id]

    async def close_calls(self, day: date) -> None:
        """The day's phone-booking calls ended, their bookings made."""
        ends = self._open_ends.pop(day, [])
        self._desk_ids.clear()
        await self._report([[end] for end in ends])
        self.calls += len(ends)

    async def run_day(self, day: date) -> int:
        """Report the day's calls other than the phone bookings' (the evening's report of the whole day)."""
        if self.plan is None:
            return 0
        index = (day - self.simulation.month_start).days
        opens = datetime.combine(day, DAY_OPENS, tzinfo=BUSINESS_TZ)
        length_s = int((datetime.combine(day, DAY_CLOSES) - datetime.combine(day, DAY_OPENS)).total_seconds())
        calls: list[list[Event]] = []
        for cell, count in self.daily[index]:
            line = self.plan.line_of(cell.city)
            for number in range(count):
                call_id = f"sim-{day:%Y%m%d}-{cell.city}-{cell.category}-{number}"
                start = opens + timedelta(seconds=(number * length_s) // count + self.random.randrange(60))
                agent = self.answered_by.get(cell.category, self.agent)
                calls.append(self._call(call_id, line, start, cell.category, agent))
        await self._report(calls)
        await self._ask([events[0]["call_id"] for events in calls if events[-1]["category"] == SELF_SERVICE])
        self.calls += len(calls)
        return len(calls)

    def calls_of(self, day: date, city: str, category: str) -> int:
        """How many calls of a city and category the day has (those `run_day` reports)."""
        index = (day - self.simulation.month_start).days
        return sum(count for cell, count in self.daily[index] if cell.city == city and cell.category == category)

    async def _ask(self, call_ids: list[str]) -> None:
        """Each self-service call's question, as the IVR recognised it, put to the knowledge base."""
        if self.ivr is None:
            return
        for call_id in call_ids:
            text = self.questions[self.random.randrange(len(self.questions))]
            await self.ivr.call("POST", SELF_SERVICE_PATH, json={"utterance_id": f"{call_id}:q1", "text": text})

    def _caller(self) -> str:
        return f"1{self.random.choice('3456789')}{self.random.randrange(10**9):09d}"

    def _call(self, call_id: str, line: str, start: datetime, category: str, agent: str) -> list[Event]:
        """A whole call's events: start, IVR, then queue and answer unless self-served, then end."""
        duration_s = 60 + self.random.randrange(420)

        def event(number: int, kind: str, offset_s: int, **fields: Any) -> Event:
            moment = (start + timedelta(seconds=offset_s)).isoformat()
            return {"call_id": call_id, "event_id": f"e{number}", "kind": kind, "at": moment, **fields}

        events = [event(1, "start", 0, city_line=line, caller_number=self._caller()),
                  event(2, "ivr", 5, ivr_node=f"main>{category}")]
        if category != SELF_SERVICE:
            events += [event(3, "queue", 20, queue=QUEUE.get(category, "general")),
                       event(4, "answer", 40, agent=agent)]
        events.append(event(5, "end", duration_s, category=category, outcome=OUTCOME.get(category, "resolved")))
        return events

    async def _report(self, calls: list[list[Event]]) -> None:
        """Whole calls' events in reports of at most the platform's limit."""
        if self.telephony is None:
            return
        batch: list[Event] = []
        for events in calls:
            if len(batch) + len(events) > EVENTS_PER_REPORT:
                await self.telephony.call("POST", REPORT_PATH, json={"events": batch})
                batch = []
            batch.extend(events)
        if batch:
            await self.telephony.call("POST", REPORT_PATH, json={"events": batch})
