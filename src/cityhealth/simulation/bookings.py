"""The month's bookings: hospitals publish sessions, and every channel books through the one slot pool.

Each booking cell of the plan (hospital × channel × app) is spread evenly over the month's days; a
booking made on day d is for a session the next day (inside the default window, before the next-day
cut-off). Residents are master-index residents, each booking at most once a day, so no cap is touched.
Phone bookings are made at the hotline's desk, each on a call of its own (a `PhoneLine`, hotline.py), whether
or not the scenario states the hotline's month: a hotline agent books for a resident only within a call.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI

from cityhealth.registry.identifiers import Sex, make_resident_id
from cityhealth.security.principals import Scope
from cityhealth.simulation.actors import Actor, Operator, SimulationError
from cityhealth.simulation.plan import BookingCell, MonthPlan, spread

if TYPE_CHECKING:
    from cityhealth.simulation.driver import Simulation

APP_SCOPES = [Scope.BOOKING_READ.value, Scope.BOOKING_WRITE.value]
SCHEDULER_SCOPES = [Scope.BOOKING_SCHEDULE.value, Scope.BOOKING_READ.value, Scope.BOOKING_WRITE.value]
DEPARTMENT = {"subject_code": "03", "local_code": "SIM-03", "local_name": "内科"}
OWN_CHANNEL_SUFFIX = "自有预约渠道"  # a hospital's own front-end: a third-party channel the bulletin leaves out


class PhoneLine(Protocol):
    """The hotline that phone bookings are made on: a call opened for each, the booking, the calls ended."""

    async def open_calls(self, day: date, count: int, agent: str) -> list[str]: ...

    async def book(self, call_id: str, agent: Actor, body: dict[str, Any], key: str) -> None: ...

    async def close_calls(self, day: date) -> None: ...


# One booking to make: who makes it, the request, its idempotency key, and the call it is made on (a phone
# booking's; None for the other channels).
Booking = tuple[Actor, dict[str, Any], str, str | None]


class BookingDriver:
    def __init__(self, simulation: Simulation, app: FastAPI, operator: Operator, plan: MonthPlan,
                 phone_line: PhoneLine) -> None:
        self.simulation = simulation
        self.app = app
        self.operator = operator
        self.plan = plan
        self.phone_line = phone_line
        self.agent_subject = ""  # the phone agent's staff subject, as the telephony names who answered
        self.hospitals: dict[str, dict[str, Any]] = {}  # name -> {organization, department, scheduler}
        self.actors: dict[tuple[str, str | None, str], Actor] = {}  # (channel, app, hospital) -> actor
        self.residents: list[str] = []
        # day index -> list of (cell, count)
        self.daily: list[list[tuple[BookingCell, int]]] = [[] for _ in range(plan.days_in_month)]

    async def prepare(self) -> None:
        if not self.plan.bookings:
            return
        simulation = self.simulation
        for cell in self.plan.bookings:
            for index, count in enumerate(spread(cell.count, self.plan.days_in_month)):
                if count:
                    self.daily[index].append((cell, count))
        for name in dict.fromkeys(cell.hospital for cell in self.plan.bookings):
            org = await simulation.ensure_organization(self.operator, name, "hospital")
            department = await self._department(org["id"])
            scheduler = await simulation.machine_client(self.app, self.operator, f"{name} 号源系统",
                                                        SCHEDULER_SCOPES, organization_id=org["id"])
            self.hospitals[name] = {"organization": org, "department": department, "scheduler": scheduler}
        for cell in self.plan.bookings:
            await self._actor(cell)
        busiest_day = max(sum(count for _, count in day) for day in self.daily)
        await self._register_residents(busiest_day)
        await self.operator.call("POST", "/api/booking/opening-balances", json={
            "as_of": (self.plan.month - timedelta(days=1)).isoformat(),
            "bookings": self.plan.bookings_cumulative_target - self.plan.bookings_in_month,
            "note": "bookings made on the platform before the simulated month"})

    async def _department(self, organization_id: int) -> dict[str, Any]:
        path = f"/api/registry/organizations/{organization_id}/departments"
        existing = (await self.operator.call("GET", path, params={"limit": 500})).json()["items"]
        for row in existing:
            if row["local_code"] == DEPARTMENT["local_code"]:
                return dict(row)
        return dict((await self.operator.call("POST", path, json=DEPARTMENT)).json())

    async def _actor(self, cell: BookingCell) -> Actor:
        key = (cell.channel, cell.app, cell.hospital if cell.app is None else "")
        if key in self.actors:
            return self.actors[key]
        simulation = self.simulation
        hospital = self.hospitals[cell.hospital]
        actor: Actor
        if cell.channel == "clinic":
            actor = hospital["scheduler"]
        elif cell.channel == "phone":
            actor = await self._agent()
        else:
            if cell.app is not None:
                # An app the registry lacks may book through either app channel (see plan_bookings).
                app_row = await simulation.ensure_app(self.operator, cell.app, "online_12320",
                                                      other_channels=["third_party"])
            else:
                owner = hospital["organization"]
                name = f"{owner['name']}{OWN_CHANNEL_SUFFIX}" if cell.channel == "third_party" \
                    else f"{owner['name']} 12320 合作入口"
                app_row = await simulation.ensure_app(self.operator, name, cell.channel,
                                                      organization_id=owner["id"])
            actor = await simulation.machine_client(self.app, self.operator, f"{app_row['name']} 预约接口",
                                                    APP_SCOPES, client_app_id=app_row["id"])
        self.actors[key] = actor
        return actor

    async def _agent(self) -> Actor:
        key = ("phone", None, "")
        if key in self.actors:
            return self.actors[key]
        agent, self.agent_subject = await self.simulation.hotline_agent(self.app, self.operator)
        self.actors[key] = agent
        return agent

    async def _register_residents(self, count: int) -> None:
        area = next((a.code for a in self.simulation.scenario.areas if a.code.isdigit()),
                    self.simulation.scenario.region.code)
        rng = self.simulation.random
        index = 0
        while len(self.residents) < count:
            index += 1
            sex = Sex.MALE if index % 2 else Sex.FEMALE
            birth = date(1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28))
            sequence = rng.randrange(500) * 2 + (1 if sex is Sex.MALE else 0)
            number = make_resident_id(area, birth, sequence, sex)
            # 409: the same number drawn twice (or registered by an earlier run); draw another.
            response = await self.operator.call("POST", "/api/registry/residents", expect=(201, 409), json={
                "id_number": number, "name": f"居民{index:06d}", "address_area_code": area})
            if response.status_code == 201:
                self.residents.append(number)

    async def run_day(self, day: date) -> int:
        """Publish tomorrow's sessions and make the day's bookings; returns how many were made."""
        index = (day - self.plan.month).days
        if not self.plan.bookings or index >= len(self.daily):
            return 0
        tomorrow = day + timedelta(days=1)
        # A session of its own for each (hospital, channel, app) cell of the day: a cell's bookings are made
        # in the plan's order, so a seed gives the same slot numbers, while the cells' run side by side, as
        # residents book at once all over the city (one hospital at a time, each booking waits for the one
        # before it to commit, and a scale-1 day of ≈17k bookings would take longer than its uploads).
        queues: list[list[Booking]] = []
        resident = 0  # the next resident to book, and so the count of bookings made
        phone = sum(count for cell, count in self.daily[index] if cell.channel == "phone")
        calls = iter(await self.phone_line.open_calls(day, phone, self.agent_subject))
        for position, (cell, count) in enumerate(self.daily[index]):
            if not count:
                continue
            hospital = self.hospitals[cell.hospital]
            response = await hospital["scheduler"].call("POST", "/api/booking/sessions", json={
                "external_id": f"SIM-{tomorrow:%Y%m%d}-{position}", "department_id": hospital["department"]["id"],
                "service_date": tomorrow.isoformat(), "start_time": time(8, 0).isoformat(),
                "end_time": time(11, 30).isoformat(), "capacity": count})
            session_id = int(response.json()["id"])
            actor = await self._actor(cell)
            queue = []
            for _ in range(count):
                body: dict[str, Any] = {"session_id": session_id, "id_number": self.residents[resident]}
                if cell.channel in ("online_12320", "third_party"):
                    body["channel"] = cell.channel
                resident += 1
                key = str(uuid.UUID(int=self.simulation.random.getrandbits(128)))
                queue.append((actor, body, key, self._call_of(calls, day) if cell.channel == "phone" else None))
            queues.append(queue)
        await asyncio.gather(*(self._book(queue) for queue in queues))
        if phone:
            await self.phone_line.close_calls(day)
        return resident

    @staticmethod
    def _call_of(calls: Iterator[str], day: date) -> str:
        call_id = next(calls, None)
        if call_id is None:
            raise SimulationError(f"the hotline opened fewer calls on {day.isoformat()} than the day has phone "
                                  "bookings", code="simulation_mismatch")
        return call_id

    async def _book(self, queue: list[Booking]) -> None:
        for actor, body, key, call_id in queue:
            if call_id is not None:
                await self.phone_line.book(call_id, actor, body, key)
            else:
                await actor.call("POST", "/api/booking/bookings", json=body, headers={"Idempotency-Key": key})

