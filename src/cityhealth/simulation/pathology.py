"""The pathology network's activity (the scenario's `telemed.pathology`), through /api/telemed/pathology.

The figures are cumulative at the month's end and never scaled (expected() rule 1): `hospitals` members of the
region join before the month, a few reading centres (role both) among them; the experts sit at the centres,
the doctors at the requesting hospitals; during the month the requesting hospitals submit the cases, each
designated to the first centre, whose system reports (accept, claim, sign) the first `reports` of them; the
centre organizes the case-discussion meetings and the video lectures, held the day they are given.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from cityhealth.simulation.actors import Actor, SimulationError
from cityhealth.simulation.scenario import PathologyTotals
from cityhealth.simulation.telemed_plan import MemberPlan, daily, scenario_hospitals

if TYPE_CHECKING:
    from cityhealth.simulation.telemed import TelemedDriver

NETWORK = "pathology"
CENTRES = 5  # reading centres among the members (fewer when the network is smaller)
SUBMITTERS = 3  # requesting hospitals whose systems submit the month's cases
SITES = (("胃窦", "biopsy"), ("甲状腺", "cytology"), ("乳腺", "resection"), ("结肠", "biopsy"),
         ("肺", "frozen_section"))
TITLES = ("主任医师", "副主任医师", "主治医师")


class PathologyDriver:
    def __init__(self, telemed: TelemedDriver, totals: PathologyTotals) -> None:
        self.telemed = telemed
        self.totals = totals
        self.centres: list[str] = []
        self.requesters: list[str] = []
        self.experts: list[int] = []
        self.doctors: dict[str, list[int]] = {}  # organization -> its doctors' ids
        self.cases: list[int] = []  # in submission order
        self.reported = 0
        self.meetings = 0
        self.lectures = 0

    def _members(self) -> list[MemberPlan]:
        simulation = self.telemed.simulation
        scenario = simulation.scenario
        names = list(dict.fromkeys(scenario_hospitals(scenario)))
        region = scenario.region.name
        names += [f"{region}病理协作医院{n:02d}" for n in range(1, self.totals.hospitals - len(names) + 1)]
        centres = min(CENTRES, max(1, self.totals.hospitals // 2))
        return [MemberPlan(name, "tertiary" if index < centres else "secondary_or_above", region, None,
                           "both" if index < centres else "requester", True)
                for index, name in enumerate(names[: self.totals.hospitals])]

    async def prepare(self, joined_on: date) -> None:
        telemed, operator = self.telemed, self.telemed.operator
        members = self._members()
        for member in members:
            await telemed.join(NETWORK, member, joined_on)
        self.centres = [m.organization for m in members if m.role == "both"]
        self.requesters = [m.organization for m in members if m.role == "requester"] or self.centres[:1]
        organizations = telemed.simulation.organizations
        for number in range(self.totals.experts):
            centre = self.centres[number % len(self.centres)]
            person = await operator.call("POST", "/api/telemed/pathology/people", json={
                "key": f"E{number + 1:04d}", "kind": "expert", "organization_id": organizations[centre]["id"],
                "name": f"病理专家{number + 1:02d}", "title": TITLES[number % len(TITLES)], "specialty": "病理诊断"})
            self.experts.append(int(person.json()["id"]))
        for number in range(self.totals.doctors):
            hospital = self.requesters[number % len(self.requesters)]
            person = await operator.call("POST", "/api/telemed/pathology/people", json={
                "key": f"D{number + 1:04d}", "kind": "doctor", "organization_id": organizations[hospital]["id"],
                "name": f"病理医生{number + 1:02d}", "title": TITLES[2]})
            self.doctors.setdefault(hospital, []).append(int(person.json()["id"]))
        centre_member = telemed.members[(NETWORK, self.centres[0])]
        for hospital in self.requesters[:SUBMITTERS]:
            await operator.call("PUT", f"/api/telemed/members/{telemed.members[(NETWORK, hospital)]}/designations",
                                json={"centre_member_ids": [centre_member]})

    async def _system(self, organization: str) -> Actor:
        return await self.telemed.client(NETWORK, organization)

    async def run_day(self, day: date) -> None:
        """The evening: the day's cases submitted and reported, its meetings and lectures given."""
        index = (day - self.telemed.simulation.month_start).days
        days = self.telemed.days
        for _ in range(daily(self.totals.cases, days)[index]):
            await self._submit(day)
        for _ in range(daily(self.totals.reports, days)[index]):
            await self._report()
        for _ in range(daily(self.totals.case_discussions, days)[index]):
            await self._meeting(day)
        for _ in range(daily(self.totals.video_lectures, days)[index]):
            await self._lecture(day)

    async def _submit(self, day: date) -> None:
        hospital = self.requesters[len(self.cases) % min(SUBMITTERS, len(self.requesters))]
        number = len(self.cases) + 1
        site, kind = SITES[number % len(SITES)]
        doctors = self.doctors.get(hospital, [])
        submitted = await (await self._system(hospital)).call("POST", "/api/telemed/pathology/cases", json={
            "external_id": f"BL{day:%Y%m%d}{number:04d}", "requesting_doctor_id": doctors[0] if doctors else None,
            "specimen_site": site, "specimen_kind": kind, "clinical_summary": f"{site}病变，请会诊明确诊断",
            "slide_count": 2 + number % 4, "block_count": 1 + number % 3,
            "slide_refs": [f"wsi://{hospital[:8]}/BL{number:04d}/{s}" for s in range(1, 3 + number % 4)]})
        self.cases.append(int(submitted.json()["case"]["id"]))

    async def _report(self) -> None:
        """The centre reports the oldest case not yet reported (one was submitted for every report due)."""
        if self.reported >= len(self.cases):
            raise SimulationError("pathology: a report is due before its case was submitted",
                                  code="simulation_mismatch")
        case_id = self.cases[self.reported]
        self.reported += 1
        centre = await self._system(self.centres[0])
        path = f"/api/telemed/cases/{case_id}"
        for step in ("accept", "claim"):
            await centre.call("POST", f"{path}/{step}", json={"request_key": f"PATH-{case_id}-{step}"})
        await centre.call("POST", f"{path}/report/sign", json={
            "request_key": f"PATH-{case_id}-sign", "findings": "镜下见腺体结构规则，间质慢性炎细胞浸润。",
            "conclusion": "慢性炎症，未见恶性证据。"})

    def _moment(self, day: date) -> dict[str, Any]:
        starts = datetime.combine(day, time(14, 0), tzinfo=self.telemed.simulation.clock.now().tzinfo)
        return {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}

    async def _meeting(self, day: date) -> None:
        self.meetings += 1
        centre = await self._system(self.centres[0])
        doctors = [person for people in self.doctors.values() for person in people]
        seen = self.cases[max(0, self.reported - 3): self.reported] or self.cases[-1:]
        meeting = (await centre.call("POST", "/api/telemed/pathology/meetings", json={
            "request_key": f"MEET-{self.meetings:04d}", "title": f"疑难病例讨论会（第{self.meetings}期）",
            **self._moment(day), "participant_ids": self.experts[:3] + doctors[:2], "case_ids": seen})).json()
        await centre.call("POST", f"/api/telemed/pathology/meetings/{meeting['id']}/hold", json={
            "request_key": f"MEET-{self.meetings:04d}-hold", "minutes": "讨论病例，形成一致诊断意见。"})

    async def _lecture(self, day: date) -> None:
        self.lectures += 1
        centre = await self._system(self.centres[0])
        lecture = (await centre.call("POST", "/api/telemed/pathology/lectures", json={
            "request_key": f"LECT-{self.lectures:04d}", "title": f"病理诊断进展讲座（第{self.lectures}讲）",
            "speaker_id": self.experts[self.lectures % len(self.experts)], **self._moment(day)})).json()
        await centre.call("POST", f"/api/telemed/pathology/lectures/{lecture['id']}/hold", json={
            "request_key": f"LECT-{self.lectures:04d}-hold", "attendance": 30 + self.lectures * 7})
