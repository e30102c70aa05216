"""The month of the remote diagnosis networks (the scenario's `telemed`), through the platform's interfaces.

Before the month the administrator registers the cities and institutions the networks reach and has each
member join its network (its kind, role, city and the district it covers). Each day, at noon, the hospitals'
systems submit their ECG cases (`POST /api/telemed/cases`) and the lab systems send their results and specimen
steps over MLLP (lab_feed.py); consultations are scheduled and answered on their days; the pathology network's
people, cases, reports, meetings and lectures come from pathology.py. What each figure counts is
docs/decisions/telemed-statistics.md.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import province_of
from cityhealth.security.principals import Scope
from cityhealth.simulation.actors import Actor, Operator, SimulationError
from cityhealth.simulation.lab_feed import LabFeed
from cityhealth.simulation.pacs import PACS_NAME, Study
from cityhealth.simulation.pathology import PathologyDriver
from cityhealth.simulation.registry_setup import all_rows, register_province
from cityhealth.simulation.telemed_plan import MemberPlan, NetworkPlan, TelemedPlan, daily

if TYPE_CHECKING:
    from cityhealth.simulation.driver import Simulation

MEMBER_SCOPES = [Scope.TELEMED_REQUEST.value, Scope.TELEMED_READ.value]
# Cities of the region's metropolitan area that join as `metro_city` members (GB/T 2260), used when the
# registry does not know them yet.
METRO_CITIES = {"马鞍山市": "340500", "镇江市": "321100", "扬州市": "321000", "滁州市": "341100", "芜湖市": "340200",
                "宣城市": "341800", "淮安市": "320800", "常州市": "320400"}
MODALITIES = ("CT", "DX", "MR", "US", "CR")
SYSTEM_NAMES = {"ecg": "远程心电系统", "imaging": "远程影像系统", "teleconsultation": "远程会诊系统"}


class TelemedDriver:
    """The networks' month; leaving the block stops the lab listener and closes the lab systems' connections."""

    def __init__(self, simulation: Simulation, app: FastAPI, operator: Operator, plan: TelemedPlan | None,
                 database: Database) -> None:
        self.simulation = simulation
        self.app = app
        self.operator = operator
        self.plan = plan
        self.days = simulation.days_in_month
        self.lab = LabFeed(database, simulation.settings, simulation.clock) if self.lab_plan else None
        self.cities: dict[str, str] = {}  # city name -> code
        self.members: dict[tuple[str, str], int] = {}  # (network code, organization name) -> member id
        self.clients: dict[tuple[str, str], Actor] = {}  # (network code, organization name) -> its system
        self.pathology = PathologyDriver(self, plan.pathology) if plan is not None and plan.pathology else None
        self.cases = 0
        self.studies = 0  # imaging studies given out so far (the plan's images are taken in this order)
        self.consultations = 0

    @property
    def lab_plan(self) -> NetworkPlan | None:
        return self.plan.network("lab") if self.plan is not None else None

    async def __aenter__(self) -> Self:
        if self.lab is not None:
            await self.lab.__aenter__()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self.lab is not None:
            await self.lab.__aexit__(kind, error, trace)

    # --- before the month --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        if self.plan is None:
            return
        await self._register_cities()
        joined_on = self.simulation.month_start - timedelta(days=7)
        for network in self.plan.networks:
            for member in network.members:
                await self.join(network.code, member, joined_on)
            for organization in self._actors_of(network):
                await self.client(network.code, organization)
            if network.consultations_opening:
                await self.operator.call("PUT", f"/api/telemed/networks/{network.code}/opening-balances", json={
                    "as_of": (self.simulation.month_start - timedelta(days=1)).isoformat(),
                    "consultations": network.consultations_opening,
                    "note": "consultations held on the platform before the simulated month"})
        if self.pathology is not None:
            await self.pathology.prepare(joined_on)

    def _actors_of(self, network: NetworkPlan) -> list[str]:
        """The organizations whose systems act over HTTP: ECG uploaders, and two members for consultations."""
        names = list(network.uploads) if network.code in ("ecg", "imaging") else []
        if network.consultations:
            hospitals = [m.organization for m in network.members if m.hospital and m.role == "both"] or \
                [m.organization for m in network.members]
            names += [name for name in hospitals[:2] if name not in names]
        return names

    async def _register_cities(self) -> None:
        """The region and the metro-area cities members are in, registered where the registry lacks them."""
        assert self.plan is not None  # noqa: S101 - only with a telemed section
        areas = await all_rows(self.operator, "/api/registry/areas")
        known = {row["code"] for row in areas}
        self.cities = {row["name"]: row["code"] for row in areas if row["level"] == "city"}
        self.cities[self.simulation.scenario.region.name] = self.simulation.scenario.region.code
        wanted = dict.fromkeys(m.city for network in self.plan.networks for m in network.members)
        if self.plan.pathology is not None:
            wanted[self.simulation.scenario.region.name] = None
        for name in wanted:
            if name in self.cities:
                continue
            code = METRO_CITIES.get(name)
            province = province_of(code) if code else None
            if code is None or province is None:
                raise SimulationError(f"telemed: the city {name} is neither in the registry nor a known metro-area "
                                      "city", field="telemed.cities", value=name, rule="scenario.city_known")
            await register_province(self.operator, known, province)
            await self.operator.call("POST", "/api/registry/areas", json={
                "code": code, "name": name, "level": "city", "parent_code": province[0]})
            known.add(code)
            self.cities[name] = code

    async def join(self, network: str, member: MemberPlan, joined_on: date) -> int:
        """The member's organization (registered where it lacks) joins the network; returns the member id."""
        key = (network, member.organization)
        if key not in self.members:
            city = self.cities[member.city]
            # Only district platforms sit on a reporting unit (3201JB): its centres are registered in the city.
            located = member.area if member.area is not None and member.area.isdigit() else city
            organization = await self.simulation.ensure_organization(
                self.operator, member.organization, "hospital" if member.hospital else "community_health_centre",
                located)
            joined = await self.operator.call("POST", f"/api/telemed/networks/{network}/members", json={
                "organization_id": organization["id"], "kind": member.kind, "role": member.role,
                "joined_on": joined_on.isoformat(), "city_code": city, "area_code": member.area or city})
            self.members[key] = int(joined.json()["id"])
        return self.members[key]

    async def client(self, network: str, organization: str) -> Actor:
        """The organization's system for the network, a machine client of its own."""
        key = (network, organization)
        if key not in self.clients:
            row = self.simulation.organizations[organization]
            self.clients[key] = await self.simulation.machine_client(
                self.app, self.operator, f"{organization} {SYSTEM_NAMES.get(network, '远程医疗系统')}", MEMBER_SCOPES,
                organization_id=row["id"])
        return self.clients[key]

    # --- the month ---------------------------------------------------------------------------------------

    async def run_day(self, day: date) -> None:
        """Noon: the day's ECG cases and lab messages side by side, then the day's consultations."""
        if self.plan is None:
            return
        index = (day - self.simulation.month_start).days
        work = []
        ecg = self.plan.network("ecg")
        if ecg is not None:
            work += [self._cases(ecg, name, day, daily(count, self.days)[index])
                     for name, count in ecg.uploads.items()]
        imaging = self.plan.network("imaging")
        if imaging is not None:
            for name, count in imaging.uploads.items():
                studies = daily(count, self.days)[index]
                work.append(self._studies(imaging, name, day, imaging.images[self.studies:self.studies + studies]))
                self.studies += studies
        lab = self.lab_plan
        if lab is not None and self.lab is not None:
            for name, count in lab.uploads.items():
                reports = daily(count, self.days)[index]
                routed = daily(lab.specimens_routed.get(name, 0), self.days)[index]
                if reports or routed:
                    code = str(self.simulation.organizations[name]["code"])
                    work.append(self.lab.send(code, self.lab.day_messages(code, day, reports, routed)))
        await asyncio.gather(*work)
        for network in self.plan.networks:
            for _ in range(daily(network.consultations, self.days)[index]):
                await self._consultation(network, day)

    async def evening(self, day: date) -> None:
        if self.pathology is not None:
            await self.pathology.run_day(day)

    async def _cases(self, network: NetworkPlan, organization: str, day: date, count: int) -> None:
        if not count:
            return
        client = await self.client(network.code, organization)
        code = self.simulation.organizations[organization]["code"]
        for number in range(count):
            self.cases += 1
            await client.call("POST", "/api/telemed/cases", json={
                "network_code": network.code,
                "external_id": f"{network.code.upper()}-{code}-{day:%Y%m%d}-{number:05d}"[:64],
                "case_type": "ecg", "priority": "routine", "clinical_question": "常规十二导联心电图，请出具诊断意见"})

    async def _studies(self, network: NetworkPlan, organization: str, day: date, images: tuple[int, ...]) -> None:
        """The hospital's studies of the day: each put in the archive, recorded (the platform counts its images
        there) and its report signed final."""
        if not images:
            return
        client = await self.client(network.code, organization)
        row = self.simulation.organizations[organization]
        for count in images:
            self.simulation.pacs.number += 1
            number = self.simulation.pacs.number
            study = Study(f"1.2.156.112605.{row['id']}.{day:%Y%m%d}.{number}", f"A{number:09d}"[:16],
                          f"P{number:08d}", MODALITIES[number % len(MODALITIES)], day, count)
            self.simulation.pacs.add(study)
            recorded = (await client.call("POST", "/api/telemed/imaging/studies", json={
                "pacs": PACS_NAME, "study_instance_uid": study.uid})).json()
            await client.call("PUT", f"/api/telemed/imaging/studies/{recorded['id']}/report", json={
                "findings": f"{study.modality} 检查所见：未见明显异常密度影。", "impression": "未见明显异常。",
                "sign": True})

    async def _consultation(self, network: NetworkPlan, day: date) -> None:
        """A consultation between two members, scheduled that morning and answered by the one consulted."""
        requester, consulted = self._actors_of(network)[:2]
        self.consultations += 1
        starts = datetime.combine(day, time(10, 0), tzinfo=BUSINESS_TZ)
        scheduled = (await (await self.client(network.code, requester)).call(
            "POST", "/api/telemed/consultations", json={
                "request_key": f"SIM-{network.code}-{self.consultations:06d}", "network_code": network.code,
                "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=45)).isoformat(),
                "participants": [{"member_id": self.members[(network.code, consulted)], "doctor_name": "会诊专家"}]})
        ).json()
        await (await self.client(network.code, consulted)).call(
            "POST", f"/api/telemed/consultations/{scheduled['id']}/opinion",
            json={"opinion": "同意现诊断，建议随访复查。"})
