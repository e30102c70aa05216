"""Drive a month through the platform: the registry, every unit's uploads, every channel's bookings, and the
hotline's calls.

Runs on a freshly migrated database with a SimulatedClock that it moves through the month. Every write goes
through the platform's public HTTP API with the credentials of the actor who would make it; only the first
administrator is created directly, as `cityhealth users create` would.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import random
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ, Clock, SimulatedClock, SystemClock
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from cityhealth.reporting import month_loads
from cityhealth.security import staff as staff_accounts
from cityhealth.security.principals import Role, Scope
from cityhealth.simulation.actors import REQUEST_TIMEOUT_S, Actors, MachineClient, Operator, SimulationError
from cityhealth.simulation.bodies import BodyWriter, DayBody
from cityhealth.simulation.bookings import BookingDriver
from cityhealth.simulation.care import CareDriver
from cityhealth.simulation.feed import PatientIdentity, UnitFeed
from cityhealth.simulation.hotline import HotlineDriver
from cityhealth.simulation.pacs import PACS_NAME, SimulatedPacs
from cityhealth.simulation.people import identities, plan_people
from cityhealth.simulation.plan import MonthPlan, UnitPlan, plan_month
from cityhealth.simulation.polling import JOB_STALL_TIMEOUT_S, wait_for_job
from cityhealth.simulation.registry_setup import all_rows, register_areas
from cityhealth.simulation.result import SimulationResult
from cityhealth.simulation.scenario import Scenario
from cityhealth.simulation.telemed import TelemedDriver
from cityhealth.simulation.telemed_plan import plan_telemed
from cityhealth.simulation.work_orders import WorkOrderDriver

# Longer than the whole simulated span (setup week and month): a member of staff who acts only some days keeps
# its session between them (see Simulation.__init__).
STAFF_SESSION_IDLE_S = 45 * 24 * 3600
REALTIME_LIMIT = 1000  # records per real-time batch (the platform's limit)
UPLOAD_SCOPES = [Scope.COLLECTION_UPLOAD.value, Scope.COLLECTION_READ.value]
HOSPITAL_SCOPES = [*UPLOAD_SCOPES, Scope.BOOKING_SCHEDULE.value, Scope.BOOKING_READ.value,
                   Scope.BOOKING_WRITE.value]

# (phase, done, total): each day, "records" (uploaded so far of the month's) and then "month" (days done).
ProgressHook = Callable[[str, int, int], None]
# The platform under simulation: create_app, handed down by the top layer (the simulator sits below it).
AppFactory = Callable[..., FastAPI]


@dataclass
class Unit:
    plan: UnitPlan
    organization_id: int
    org_code: str
    client: MachineClient
    feed: UnitFeed


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


class Simulation:
    """A scenario's month at a scale, driven through a platform built by `app_factory`.

    The month's progress is kept in a month-load record (reporting.month_loads), so that the platform's
    pages, served by another process meanwhile, show how far it is and hold back the month's bulletin.
    Its timestamps come from `wall_clock`: the reader of the progress lives in real time.
    """

    def __init__(self, app_factory: AppFactory, settings: Settings, scenario: Scenario, scale: Decimal,
                 seed: int, progress: ProgressHook | None = None, *, wall_clock: Clock | None = None,
                 request_timeout_s: float = REQUEST_TIMEOUT_S,
                 job_stall_timeout_s: float = JOB_STALL_TIMEOUT_S) -> None:
        if settings.env is Environment.PRODUCTION:
            raise SimulationError("the simulator cannot run in production", code="simulation_in_production")
        self.app_factory = app_factory
        # A simulated day is a few instants hours apart, and some staff act only on some days, while those it
        # plays are at work throughout: their sessions must outlive the gaps, or each gap would end them and
        # they would log in again (the platform limits authentications per address and account, in wall-clock
        # time, and a month runs in seconds).
        self.settings = settings.model_copy(update={
            "simulated_clock": True,
            "staff_session_idle_timeout_s": max(settings.staff_session_idle_timeout_s, STAFF_SESSION_IDLE_S)})
        self.scenario = scenario
        self.scale = scale
        self.seed = seed
        self.wall_clock = wall_clock or SystemClock()
        self.request_timeout_s = request_timeout_s
        self.job_stall_timeout_s = job_stall_timeout_s
        self.actors = Actors()
        self.random = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not secrets
        self.progress = progress or _no_progress
        year, month = (int(part) for part in scenario.month.split("-"))
        self.month_start = date(year, month, 1)
        # Setup happens the week before the month; opening balances are as of the day before it.
        self.clock = SimulatedClock(datetime.combine(self.month_start - timedelta(days=7),
                                                     datetime.min.time(), tzinfo=BUSINESS_TZ))
        # Documentation ranges (RFC 5737): 198.51.100.1 is the bootstrap administrator's.
        self._addresses = iter([f"198.51.100.{n}" for n in range(2, 255)] + [f"{net}.{n}" for net in (
            "203.0.113", "192.0.2") for n in range(1, 255)])
        self.organizations: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.pacs = SimulatedPacs()  # replaced by the one serving the run, when the scenario has imaging
        self._clients = 0

    def at(self, day: date, hour: int, minute: int = 0) -> None:
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=BUSINESS_TZ)
        if moment > self.clock.now():
            self.clock.set(moment)

    @property
    def source(self) -> str:
        """How the month-load record names this run."""
        name = self.scenario.title or self.scenario.month
        return f"simulation of {name} at scale {self.scale}, seed {self.seed}"[:200]

    async def announce(self) -> None:
        """Record the month as being loaded (0 %) without running it: servers started now hold its bulletin."""
        plan_month(self.scenario, self.scale)  # an infeasible scenario is refused before anything is recorded
        database = Database(self.settings.effective_database_url)
        try:
            async with database.transaction() as session:
                await month_loads.start(session, self.wall_clock, self.scenario.month, self.source,
                                        _days_in(self.month_start))
        finally:
            await database.dispose()

    async def run(self) -> SimulationResult:
        started = time.perf_counter()
        result = SimulationResult(month=self.scenario.month, scale=self.scale)
        await self.announce()
        database = Database(self.settings.effective_database_url)
        try:
            try:
                # The imaging archive the hospitals' studies are in, configured into the platform it serves.
                async with self._pacs() as pacs:
                    if pacs is not None:
                        self.pacs = pacs
                        self.settings = self.settings.model_copy(
                            update={"telemed_pacs": {**self.settings.telemed_pacs, PACS_NAME: pacs.root}})
                    app = self.app_factory(self.settings, database=database, clock=self.clock)
                    # Leaving this block closes every actor's client, whatever ends the run.
                    async with app.router.lifespan_context(app), self.actors:
                        try:
                            await self._drive(app, database, result)
                        finally:
                            staff = [actor for actor in self.actors if isinstance(actor, Operator)]
                            result.staff_logins = sum(actor.logins for actor in staff)
                            result.staff_refreshes = sum(actor.refreshes for actor in staff)
            except BaseException as exc:
                await self._record_failure(database, exc)
                raise
            async with database.transaction() as session:
                await month_loads.complete(session, self.wall_clock, self.scenario.month)
        finally:
            await database.dispose()
        result.elapsed_s = time.perf_counter() - started
        return result

    def _pacs(self) -> contextlib.AbstractAsyncContextManager[SimulatedPacs | None]:
        telemed = self.scenario.telemed
        if telemed is None or telemed.imaging is None:
            return contextlib.nullcontext()
        return SimulatedPacs()

    async def _drive(self, app: FastAPI, database: Database, result: SimulationResult) -> None:
        operator = await self._bootstrap_operator(app, database)
        await register_areas(operator, self.scenario)
        await self._load_organizations(operator)
        plan = plan_month(self.scenario, self.scale,
                          {name: app_row["channel"] for name, app_row in self.apps.items()})
        people = plan_people(self.scenario, self.scale, self.seed)
        units = await self._register_units(app, operator, plan, identities(people))
        care = CareDriver(self, app, operator, people)
        with _timed(result, "care_setup"):
            await care.prepare()
        await self._record_openings(operator, plan, units)
        hotline = HotlineDriver(self, app, operator, plan)
        await hotline.prepare()
        orders = WorkOrderDriver(self, app, operator, plan, hotline)
        await orders.prepare()
        bookings = BookingDriver(self, app, operator, plan, hotline)
        await bookings.prepare()
        # Leaving this block stops the lab listener and closes the lab systems' connections.
        async with TelemedDriver(self, app, operator, plan_telemed(self.scenario, self.scale), database) as telemed:
            with _timed(result, "telemed_setup"):
                await telemed.prepare()
            upload_started = time.perf_counter()
            await self._run_month(database, units, plan, bookings, (hotline, orders, telemed, care), result)
            result.telemed_cases = telemed.cases
            result.lab_messages = telemed.lab.messages if telemed.lab is not None else 0
        await orders.finish(self.job_stall_timeout_s)
        result.calls = hotline.calls
        result.work_orders = orders.tally
        result.upload_s = time.perf_counter() - upload_started
        result.accepted_expected = plan.accepted_in_month
        result.residents, result.contracts, result.followups = len(care.resident_ids), care.contracts, care.followups

    async def _record_failure(self, database: Database, exc: BaseException) -> None:
        """Say on the month-load record why the month stopped (best effort: the run's error is what matters)."""
        reason = exc.message if isinstance(exc, SimulationError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            reason = "interrupted"
        with contextlib.suppress(Exception):
            async with database.transaction() as session:
                await month_loads.fail(session, self.wall_clock, self.scenario.month, reason)

    async def _record_day(self, database: Database, day_of_month: int) -> None:
        async with database.transaction() as session:
            await month_loads.advance(session, self.wall_clock, self.scenario.month, day_of_month)

    async def _bootstrap_operator(self, app: FastAPI, database: Database) -> Operator:
        username = f"simulator-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        async with database.transaction() as session:
            created = await staff_accounts.create_staff_user(
                session, self.clock, self.settings, username=username, display_name="城市模拟器 operator",
                password=password, roles=frozenset({Role.PLATFORM_ADMIN}), organization_id=None)
        if created.totp_uri is None:
            raise SimulationError("a platform administrator must have a second factor")
        secret = parse_qs(urlparse(created.totp_uri).query)["secret"][0]
        return self.operator(app, username, password, secret)

    def operator(self, app: FastAPI, username: str, password: str, totp_secret: str) -> Operator:
        """A staff actor of this run (its client is closed with the run's)."""
        # Each at a workstation of its own: the platform limits authentications per source address.
        return self.actors.add(Operator(app, self.clock, username, password, totp_secret,
                                        address=self.next_address(), timeout_s=self.request_timeout_s))

    async def hotline_agent(self, app: FastAPI, operator: Operator) -> tuple[Operator, str]:
        """A new 12320 agent's account, logged in, and the staff subject the telephony names them by."""
        return await self.staff_member(app, operator, Role.HOTLINE_AGENT, "12320 话务员")

    async def staff_member(self, app: FastAPI, operator: Operator, role: Role, display_name: str,
                           organization_id: int | None = None) -> tuple[Operator, str]:
        """A new staff account with one role (of an organization, if given), and its staff subject."""
        username = f"{role.value.replace('_', '-')}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        created = (await operator.call("POST", "/api/security/staff", json={
            "username": username, "display_name": display_name, "password": password,
            "roles": [role.value], "organization_id": organization_id})).json()
        secret = parse_qs(urlparse(created["totp_provisioning_uri"]).query)["secret"][0]
        return self.operator(app, username, password, secret), f"staff:{created['user']['id']}"

    @property
    def days_in_month(self) -> int:
        return _days_in(self.month_start)

    def next_address(self) -> str:
        return next(self._addresses)

    async def _load_organizations(self, operator: Operator) -> None:
        self.organizations = {row["name"]: row for row in await all_rows(operator, "/api/registry/organizations")}
        self.apps = {row["name"]: row for row in await all_rows(operator, "/api/registry/client-apps")}

    async def ensure_organization(self, operator: Operator, name: str, kind: str,
                                  area_code: str | None = None) -> dict[str, Any]:
        """The named organization, registered in the scenario's region when the registry lacks it."""
        if name not in self.organizations:
            response = await operator.call("POST", "/api/registry/organizations", json={
                "name": name, "kind": kind, "area_code": area_code or self.scenario.region.code,
                "active_from": (self.month_start - timedelta(days=7)).isoformat()})
            self.organizations[name] = response.json()
        return self.organizations[name]

    async def ensure_app(self, operator: Operator, name: str, channel: str,
                         organization_id: int | None = None, other_channels: list[str] | None = None
                         ) -> dict[str, Any]:
        if name not in self.apps:
            code = f"sim-app-{len(self.apps) + 1:03d}"
            response = await operator.call("POST", "/api/registry/client-apps", json={
                "code": code, "name": name, "channel": channel, "organization_id": organization_id,
                "other_channels": other_channels or []})
            self.apps[name] = response.json()
        return self.apps[name]

    async def machine_client(self, app: FastAPI, operator: Operator, name: str, scopes: list[str], *,
                             organization_id: int | None = None, client_app_id: int | None = None) -> MachineClient:
        self._clients += 1
        client_id = f"sim-{self._clients:04d}"
        client = self.actors.add(MachineClient(app, self.clock, self.next_address(), client_id, name,
                                               timeout_s=self.request_timeout_s))
        await operator.call("POST", "/api/security/clients", json={
            "client_id": client_id, "name": name, "scopes": scopes, "organization_id": organization_id,
            "client_app_id": client_app_id, "jwks": client.public_jwks()})
        return client

    def _district_platform(self, area_code: str) -> str | None:
        for name, row in self.organizations.items():
            if row["kind"] == "district_platform" and row.get("area_code") == area_code:
                return name
        return None

    async def _register_units(self, app: FastAPI, operator: Operator, plan: MonthPlan,
                              patients: tuple[PatientIdentity, ...] = ()) -> list[Unit]:
        area_names = {area.code: area.name for area in self.scenario.areas}
        units: list[Unit] = []
        for unit_plan in plan.units:
            if unit_plan.area_code is not None:
                name = self._district_platform(unit_plan.area_code) or \
                    f"{area_names.get(unit_plan.area_code, unit_plan.area_code)}卫生信息平台"
                org = await self.ensure_organization(operator, name, "district_platform", unit_plan.area_code)
                record_area = unit_plan.area_code if unit_plan.area_code.isdigit() else self.scenario.region.code
                scopes = UPLOAD_SCOPES
            else:
                org = await self.ensure_organization(operator, unit_plan.name, "hospital")
                record_area = self.scenario.region.code
                scopes = HOSPITAL_SCOPES
            client = await self.machine_client(app, operator, f"{org['name']} 信息系统", scopes,
                                               organization_id=org["id"])
            feed = UnitFeed(unit_plan, org["code"], plan.month, record_area, patients)
            units.append(Unit(unit_plan, org["id"], org["code"], client, feed))
        return units

    async def _record_openings(self, operator: Operator, plan: MonthPlan, units: list[Unit]) -> None:
        """Enrolments for the month, and the opening balances a center migrating to the platform records."""
        as_of = (self.month_start - timedelta(days=1)).isoformat()
        month_end = (self.month_start + timedelta(days=plan.days_in_month - 1)).isoformat()
        for unit in units:
            for group, rate in (("outpatient", unit.plan.outpatient), ("inpatient", unit.plan.inpatient)):
                if rate is not None:
                    await operator.call("POST", "/api/collection/enrolments", json={
                        "organization_code": unit.org_code, "group": group,
                        "start_date": self.month_start.isoformat(), "end_date": month_end})
            for form, kind in (("health_record", "health_record_basic"),
                               ("hypertension_followup", "health_record_hypertension"),
                               ("diabetes_followup", "health_record_diabetes")):
                if unit.plan.area_code is None:
                    continue
                balance = unit.plan.health_records_target[form] - unit.plan.public_health.get(form, 0)
                await operator.call("PUT", "/api/collection/opening-balances", json={
                    "kind": kind, "count": balance, "as_of": as_of, "area_code": unit.plan.area_code})
        if self.scenario.collection is not None:
            await operator.call("PUT", "/api/collection/opening-balances", json={
                "kind": "accepted_total", "count": plan.cumulative_accepted_target - plan.accepted_in_month,
                "as_of": as_of})

    async def _run_month(self, database: Database, units: list[Unit], plan: MonthPlan, bookings: BookingDriver,
                         hotline: tuple[HotlineDriver, WorkOrderDriver, TelemedDriver, CareDriver],
                         result: SimulationResult) -> None:
        """Each day: the morning's bookings (the phone ones on the hotline's calls), at noon every unit's
        uploads and the remote diagnosis networks' cases and lab messages, in the evening the day's other calls,
        work orders and the pathology network's activity.

        The smallest unit sends through the real-time path, the others one bulk job each (one job per
        unit-day keeps transactions few, as real senders batch). A day's jobs are left to run while the next
        day's bookings and uploads go on, and another process writes the next day's bodies meanwhile, so the
        month moves as fast as the platform ingests: the simulator waits for a day's jobs only after sending
        the next day's.
        """
        realtime = min(units, key=lambda unit: unit.plan.uploaded) if units else None
        records_in_month = sum(unit.plan.uploaded for unit in units)
        bulk = [unit for unit in units if unit is not realtime]
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="simulation-", dir=self.settings.var_dir) as directory:
            # The writer's process takes over the bulk units' feeds: the copies here are never advanced.
            writer = BodyWriter([unit.feed for unit in bulk], Path(directory))
            try:
                upcoming = writer.day(1, plan.days_in_month, len(bulk))
                running: list[tuple[Unit, str]] = []
                for day_of_month in range(1, plan.days_in_month + 1):
                    day = self.month_start + timedelta(days=day_of_month - 1)
                    self.at(day, 9)
                    with _timed(result, "bookings"):
                        result.bookings += await bookings.run_day(day)
                    self.at(day, 12)
                    bodies = upcoming
                    upcoming = writer.day(day_of_month + 1, plan.days_in_month, len(bulk)) \
                        if day_of_month < plan.days_in_month else []
                    if realtime is not None:
                        with _timed(result, "realtime"):
                            result.uploaded += await self._send_realtime(realtime, day_of_month, plan)
                    with _timed(result, "bulk_send"):
                        sent = await self._send_bulk(bulk, bodies, result)
                    result.uploaded += sum(body.records for _, _, body in sent)
                    with _timed(result, "telemed"):  # while the platform's jobs ingest the day's bodies
                        await hotline[2].run_day(day)
                    await self._wait_for_jobs(running, result)
                    running = [(unit, job_id) for unit, job_id, _ in sent]
                    self.at(day, 22)
                    with _timed(result, "calls"):
                        await hotline[0].run_day(day)
                    with _timed(result, "work_orders"):
                        await hotline[1].run_day(day)
                    with _timed(result, "telemed"):
                        await hotline[2].evening(day)
                    with _timed(result, "care"):
                        await hotline[3].run_day(day)
                    await self._record_day(database, day_of_month)
                    self.progress("records", result.uploaded, records_in_month)
                    self.progress("month", day_of_month, plan.days_in_month)
                await self._wait_for_jobs(running, result)
            finally:
                writer.close()

    async def _send_realtime(self, unit: Unit, day_of_month: int, plan: MonthPlan) -> int:
        by_form: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in unit.feed.lines_for(day_of_month):
            record = orjson.loads(line)
            by_form[record.pop("form")].append(record)
        sent = sum(len(records) for records in by_form.values())
        by_form["workload_daily"].append(unit.feed.workload(day_of_month, plan.days_in_month))
        for form, records in by_form.items():
            for start in range(0, len(records), REALTIME_LIMIT):
                await unit.client.call("POST", f"/api/collection/forms/{form}/records",
                                       content=orjson.dumps(records[start:start + REALTIME_LIMIT]),
                                       headers={"Content-Type": "application/json"})
        return sent

    async def _send_bulk(self, units: list[Unit], bodies: list[asyncio.Future[DayBody]],
                         result: SimulationResult) -> list[tuple[Unit, str, DayBody]]:
        """Each unit's body of the day as a bulk job, sent as soon as it is written."""
        sent: list[tuple[Unit, str, DayBody]] = []
        for unit, future in zip(units, bodies, strict=True):
            with _timed(result, "bodies_wait"):
                body = await future
            try:
                response = await unit.client.call(
                    "POST", "/api/collection/jobs", content=body.chunks(),
                    headers={"Content-Type": "application/x-ndjson"}, params={"format": "ndjson"})
            finally:
                body.discard()
            sent.append((unit, str(response.json()["id"]), body))
        return sent

    async def _wait_for_jobs(self, jobs: list[tuple[Unit, str]], result: SimulationResult) -> None:
        with _timed(result, "jobs_wait"):
            for unit, job_id in jobs:
                await wait_for_job(unit.client, job_id, stall_timeout_s=self.job_stall_timeout_s)


@contextmanager
def _timed(result: SimulationResult, phase: str) -> Iterator[None]:
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        result.phases_s[phase] += time.perf_counter() - started
        result.cpu_s[phase] += time.process_time() - cpu


def announce(settings: Settings, scenario: Scenario, scale: Decimal, seed: int = 1) -> None:
    """Record a scenario's month as being loaded, for the simulation that `simulate` will then run."""
    # The app factory is not needed to record the month: nothing of the platform runs.
    asyncio.run(Simulation(_no_app, settings, scenario, scale, seed).announce())


def _no_app(*_args: Any, **_kwargs: Any) -> FastAPI:
    raise SimulationError("announcing a month runs no platform")


def _days_in(month_start: date) -> int:
    return calendar.monthrange(month_start.year, month_start.month)[1]


def simulate(app_factory: AppFactory, settings: Settings, scenario: Scenario, scale: Decimal, seed: int = 1,
             progress: ProgressHook | None = None) -> SimulationResult:
    """Run a scenario's month at `scale` against the configured (freshly migrated) database."""
    return asyncio.run(Simulation(app_factory, settings, scenario, scale, seed, progress).run())

