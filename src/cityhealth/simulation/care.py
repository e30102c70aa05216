"""The people of the month through the platform: residents into the master index, family doctor teams at the
community health centres, contracts, the chronic disease registers and their follow-ups.

Before the month (setup week): the registry's operator registers the residents and each area's centre (the
registry's own where it has one), the centre's practitioners, and the service package; each centre's family
doctor signs in, puts its teams, signs the planned contracts, enters its chronic patients on their registers
with their last follow-up before the month. In the month: each evening the follow-ups of the day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from cityhealth.security.principals import Role
from cityhealth.simulation.actors import Operator
from cityhealth.simulation.people import CentrePlan, PeoplePlan, Reading, SimResident

if TYPE_CHECKING:
    from cityhealth.simulation.driver import Simulation

COMMUNITY_HEALTH_CENTRE = "community_health_centre"
PACKAGE_CODE = "basic"
TEAM_ROLES = (("doctor", "全科医生"), ("nurse", "社区护士"), ("public_health", "公共卫生医师"))


def centre_name(registered: list[str], area_name: str) -> str:
    """The centre an area's family doctors work at: the first by name of the area's registered centres, or else
    the one the simulator registers for the area."""
    return min(registered) if registered else f"{area_name}社区卫生服务中心"


class CareDriver:
    def __init__(self, simulation: Simulation, app: FastAPI, operator: Operator, plan: PeoplePlan) -> None:
        self.simulation = simulation
        self.app = app
        self.operator = operator
        self.plan = plan
        self.resident_ids: dict[int, int] = {}  # SimResident.index -> the master index's id
        self.doctors: dict[str, Operator] = {}  # area code -> the centre's family doctor
        self.centre_ids: dict[str, int] = {}  # area code -> organization id
        self._due: dict[date, list[tuple[str, int, str, Reading]]] = defaultdict(list)
        self.followups = 0
        self.contracts = 0

    async def prepare(self) -> None:
        if not self.plan.residents:
            return
        for resident in self.plan.residents:
            self.resident_ids[resident.index] = await self._register(resident)
        package = (await self.operator.call("PUT", f"/api/records/family/packages/{PACKAGE_CODE}", json={
            "name": "基础服务包", "services": "健康评估、慢病随访、健康咨询、预约转诊", "annual_fee_fen": 0,
        })).json()
        area_of = {resident.index: resident.area_code for resident in self.plan.residents}
        by_area: dict[str, list[Any]] = defaultdict(list)
        for patient in self.plan.chronic:
            by_area[area_of[patient.resident]].append(patient)
        for centre in self.plan.centres:
            doctor, teams = await self._centre(centre)
            for index, team in centre.contracts:
                await doctor.call("POST", "/api/records/family/contracts", json={
                    "resident_ids": [self.resident_ids[index]], "team_id": teams[team],
                    "package_id": package["id"]})
                self.contracts += 1
            for patient in by_area[centre.area_code]:
                registration = (await doctor.call("POST", "/api/records/chronic/registrations", json={
                    "resident_id": self.resident_ids[patient.resident], "program": patient.program,
                    "registered_on": patient.registered_on.isoformat()})).json()
                for reading in patient.history:
                    await self._followup(doctor, registration["id"], patient.program, reading)
                for reading in patient.in_month:
                    self._due[reading.visit_date].append((centre.area_code, registration["id"], patient.program,
                                                          reading))

    async def run_day(self, day: date) -> None:
        """The day's follow-ups at the centres, recorded by their family doctors that evening."""
        for area_code, registration_id, program, reading in self._due.pop(day, []):
            await self._followup(self.doctors[area_code], registration_id, program, reading)

    async def _register(self, resident: SimResident) -> int:
        response = await self.operator.call("POST", "/api/registry/residents", json={
            "id_number": resident.id_number, "name": resident.name, "sex": resident.sex,
            "birth_date": resident.birth_date.isoformat(), "phone": resident.phone,
            "address_area_code": resident.address_area_code})
        return int(response.json()["id"])

    async def _centre(self, centre: CentrePlan) -> tuple[Operator, list[int]]:
        """The area's centre (the registry's first of the area, else one registered), its practitioners, its
        family doctor's account and its teams."""
        simulation = self.simulation
        area = centre.organization_area
        name = centre_name([row["name"] for row in simulation.organizations.values()
                            if row["kind"] == COMMUNITY_HEALTH_CENTRE and row.get("area_code") == area],
                           centre.area_name)
        organization = await simulation.ensure_organization(self.operator, name, COMMUNITY_HEALTH_CENTRE,
                                                            centre.organization_area)
        organization_id = int(organization["id"])
        self.centre_ids[centre.area_code] = organization_id
        doctor, _ = await simulation.staff_member(self.app, self.operator, Role.FAMILY_DOCTOR, f"{name} 家庭医生",
                                                  organization_id)
        self.doctors[centre.area_code] = doctor
        teams: list[int] = []
        for number in range(centre.teams):
            members = []
            for role, title in TEAM_ROLES:
                practitioner = (await self.operator.call(
                    "POST", f"/api/registry/organizations/{organization_id}/practitioners",
                    json={"staff_code": f"FD{number + 1:02d}-{role[:2].upper()}", "name": f"{title}{number + 1}号",
                          "title": title})).json()
                members.append({"practitioner_id": practitioner["id"], "role": role})
            team = (await doctor.call("PUT", f"/api/records/family/organizations/{organization_id}/teams/"
                                             f"T{number + 1:02d}",
                                      json={"name": f"家庭医生团队{number + 1}", "members": members})).json()
            teams.append(int(team["id"]))
        return doctor, teams

    async def _followup(self, doctor: Operator, registration_id: int, program: str, reading: Reading) -> None:
        body: dict[str, Any] = {"key": f"sim-{registration_id}-{reading.visit_date:%Y%m%d}",
                                "visit_date": reading.visit_date.isoformat(), "sbp": reading.sbp,
                                "dbp": reading.dbp}
        if program == "diabetes":
            body["fbg_mmol_l"] = reading.fbg_mmol_l
        await doctor.call("POST", f"/api/records/chronic/registrations/{registration_id}/followups", json=body)
        self.followups += 1

