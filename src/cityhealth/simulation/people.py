"""The month's people: residents of the master index, family doctor contracts and the chronic disease registers.

Planned from the scenario's health-record figures (`collection.districts[].health_records_cumulative`): each
area gets residents in proportion to its basic health records at the scale, its hypertension and diabetes
patients in the proportion its figures give, a community health centre with family doctor teams, and contracts
for a share of its residents. The whole plan follows from the scenario, the scale and the seed, and holds
what the simulator sends, never anything it reads back.

Residents are registered one request each through the registry's API, so their number is bounded
(MAX_RESIDENTS; docs/decisions/simulated-residents.md gives the figures): the scaled figure is kept below
the bound and the bound shared out in proportion above it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from cityhealth.registry.identifiers import Sex, make_resident_id
from cityhealth.simulation.feed import PatientIdentity
from cityhealth.simulation.scenario import Scenario, round_half_up, scaled

MAX_RESIDENTS = 240
CONTRACT_SHARE = Decimal("0.4")  # of an area's residents signed with a family doctor team (every chronic patient)
TEAM_PANEL = 150  # contracts per simulated team: a centre gets one team per this many, at least one
CONTROLLED_SHARE = 0.6  # of follow-ups with readings below the targets
SEEN_IN_MONTH_SHARE = 0.85  # of chronic patients followed up in the month; the others fall due or overdue
# Of the residents' patient master records (identities()): one in CONFLICT_EVERY names another person beside the
# ID number, and NO_ID_NUMBER in CONFLICT_EVERY give another document instead of the ID number.
CONFLICT_EVERY = 20
NO_ID_NUMBER = 3
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌宁海燕鹏飞云峰婷雪琳"
MOBILE_PREFIXES = ("138", "139", "150", "151", "158", "187", "136", "135")


@dataclass(frozen=True)
class SimResident:
    """A resident as the simulator registers them (and as hospitals' patient master records name them)."""

    index: int
    id_number: str
    name: str
    sex: int  # GB/T 2261.1: 1 male, 2 female
    birth_date: date
    phone: str
    area_code: str  # the scenario area of their address
    address_area_code: str  # 6 digits, as upload forms take an address area


@dataclass(frozen=True)
class Reading:
    visit_date: date
    sbp: int
    dbp: int
    fbg_mmol_l: float | None


@dataclass(frozen=True)
class ChronicPatient:
    resident: int  # SimResident.index
    program: str  # hypertension | diabetes
    registered_on: date
    history: tuple[Reading, ...]  # follow-ups before the month (recorded during setup)
    in_month: tuple[Reading, ...]  # follow-ups on days of the month


@dataclass(frozen=True)
class CentrePlan:
    area_code: str
    area_name: str
    # Where the centre is registered: its district (a reporting unit such as 江北新区 holds only district
    # platforms, so a reporting unit's centre is registered in the region)
    organization_area: str
    teams: int
    contracts: tuple[tuple[int, int], ...]  # (resident index, team number 0..teams-1), each resident once


@dataclass(frozen=True)
class PeoplePlan:
    residents: tuple[SimResident, ...]
    centres: tuple[CentrePlan, ...]
    chronic: tuple[ChronicPatient, ...]

    @property
    def contracts(self) -> int:
        return sum(len(centre.contracts) for centre in self.centres)

    def demo(self) -> tuple[SimResident, CentrePlan] | None:
        """The resident `make demo` offers: the first hypertension patient with a contract, else any contracted."""
        signed = {index: centre for centre in self.centres for index, _ in centre.contracts}
        for patient in self.chronic:
            if patient.program == "hypertension" and patient.resident in signed:
                return self.residents[patient.resident], signed[patient.resident]
        first = next(iter(signed), None)
        return None if first is None else (self.residents[first], signed[first])


def _shares(wanted: dict[str, int], bound: int) -> dict[str, int]:
    """`wanted` as it is when its total is within `bound`, else `bound` shared in proportion (largest remainder)."""
    total = sum(wanted.values())
    if total <= bound:
        return dict(wanted)
    exact = {key: Decimal(value) * bound / total for key, value in wanted.items()}
    shares = {key: int(value) for key, value in exact.items()}
    for key in sorted(exact, key=lambda k: (shares[k] - exact[k], k))[:bound - sum(shares.values())]:
        shares[key] += 1
    return shares


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _resident(rng: random.Random, index: int, area_code: str, region_code: str, month_start: date,
              taken: set[str]) -> SimResident:
    address_area = area_code if area_code.isdigit() else region_code
    age_days = rng.randint(18 * 365, 85 * 365)
    birth = month_start - timedelta(days=age_days)
    sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
    seq = (index % 500) * 2 + (1 if sex is Sex.MALE else 0)
    number = make_resident_id(address_area, birth, seq, sex)
    while number in taken:  # the master index holds a number once: another resident's birthday moves a day
        birth -= timedelta(days=1)
        number = make_resident_id(address_area, birth, seq, sex)
    taken.add(number)
    phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
    return SimResident(index=index, id_number=number, name=_name(rng),
                       sex=int(sex), birth_date=birth, phone=phone, area_code=area_code,
                       address_area_code=address_area)


def reading(rng: random.Random, program: str, visit: date) -> Reading:
    """A plausible follow-up's readings: below the targets (140/90, 7.0 mmol/L) for a controlled patient."""
    controlled = rng.random() < CONTROLLED_SHARE
    sbp = rng.randint(105, 138) if controlled else rng.randint(141, 185)
    dbp = rng.randint(62, min(88, sbp - 30)) if controlled else rng.randint(80, min(112, sbp - 30))
    fbg = None
    if program == "diabetes":
        fbg = round(rng.uniform(4.6, 6.9) if controlled else rng.uniform(7.2, 13.8), 1)
    return Reading(visit, sbp, dbp, fbg)


def plan_people(scenario: Scenario, scale: Decimal, seed: int, *, bound: int = MAX_RESIDENTS) -> PeoplePlan:
    """Residents, centres, contracts and chronic patients of the scenario's month at `scale`, for `seed`."""
    if scenario.collection is None:
        return PeoplePlan((), (), ())
    rng = random.Random(f"people:{seed}")  # noqa: S311 - reproducible synthetic data, not secrets
    year, month = (int(part) for part in scenario.month.split("-"))
    month_start = date(year, month, 1)
    next_month = date(year + month // 12, month % 12 + 1, 1)
    days = (next_month - month_start).days
    names = {area.code: area.name for area in scenario.areas}
    rows = sorted(scenario.collection.districts, key=lambda row: row.area)
    counts = _shares({row.area: scaled(row.health_records_cumulative.basic, scale) for row in rows}, bound)
    residents: list[SimResident] = []
    centres: list[CentrePlan] = []
    chronic: list[ChronicPatient] = []
    taken: set[str] = set()
    for row in rows:
        count = counts[row.area]
        if count == 0:
            continue
        first = len(residents)
        residents += [_resident(rng, first + i, row.area, scenario.region.code, month_start, taken)
                      for i in range(count)]
        members = list(range(first, first + count))
        basic = row.health_records_cumulative.basic
        patients: list[int] = []
        for program, registered in (("hypertension", row.health_records_cumulative.hypertension),
                                    ("diabetes", row.health_records_cumulative.diabetes)):
            size = min(count, round_half_up(Decimal(count) * registered / basic)) if basic else 0
            for index in sorted(rng.sample(members, size)):
                chronic.append(_patient(rng, index, program, month_start, days))
                patients.append(index)
        signed = set(patients)
        target = max(len(signed), round_half_up(Decimal(count) * CONTRACT_SHARE))
        others = [index for index in members if index not in signed]
        signed.update(rng.sample(others, target - len(signed)))
        teams = max(1, -(-len(signed) // TEAM_PANEL))
        contracts = tuple((index, rng.randrange(teams)) for index in sorted(signed))
        centres.append(CentrePlan(row.area, names.get(row.area, row.name),
                                  row.area if row.area.isdigit() else scenario.region.code, teams, contracts))
    return PeoplePlan(tuple(residents), tuple(centres), tuple(chronic))


def _patient(rng: random.Random, index: int, program: str, month_start: date, days: int) -> ChronicPatient:
    registered = month_start - timedelta(days=rng.randint(120, 720))
    # The last follow-up before the month: one to three months before it, after the registration.
    history = (reading(rng, program, month_start - timedelta(days=rng.randint(30, 89))),)
    in_month: tuple[Reading, ...] = ()
    if rng.random() < SEEN_IN_MONTH_SHARE:
        in_month = (reading(rng, program, month_start + timedelta(days=rng.randrange(days))),)
    return ChronicPatient(index, program, registered, history, in_month)


def identities(plan: PeoplePlan) -> tuple[PatientIdentity, ...]:
    """How the hospitals' patient master records name the plan's residents, by the resident's number:
    - most with their ID number and their own details;
    - NO_ID_NUMBER in CONFLICT_EVERY with another document instead of the ID number: all but the last of them
      with their own details (a match above the linkage's threshold), the last with their surname but another
      given name and another phone (a match in the band an operator reviews);
    - one in CONFLICT_EVERY with the ID number beside another surname and phone (a conflict, not a link). The
      birth date and sex stay the number's: the upload's own check compares them and would reject the record.
    """
    residents = plan.residents
    patients: list[PatientIdentity] = []
    for resident in residents:
        name, phone, document = resident.name, resident.phone, None
        other = residents[(resident.index + 1) % len(residents)]
        slot = resident.index % CONFLICT_EVERY
        if slot == 0:
            surname = other.name[0] if other.name[0] != resident.name[0] else _other_surname(resident.name[0])
            name, phone = surname + other.name[1:], other.phone
        elif 1 <= slot <= NO_ID_NUMBER:
            document = f"YB{resident.index:010d}"
            if slot == NO_ID_NUMBER:
                given = resident.name[1:]
                name = resident.name[0] + ("".join(_other_given(char) for char in given))
                phone = other.phone if other.phone != resident.phone else phone[:-1] + str((int(phone[-1]) + 1) % 10)
        patients.append(PatientIdentity(
            patient_id=f"R{resident.index:08d}", id_number=resident.id_number, document=document, name=name,
            sex=resident.sex, birth_date=resident.birth_date, phone=phone,
            address_area_code=resident.address_area_code))
    return tuple(patients)


def _other_surname(surname: str) -> str:
    return SURNAMES[(SURNAMES.index(surname) + 1) % len(SURNAMES)]


def _other_given(char: str) -> str:
    return GIVEN[(GIVEN.index(char) + 1) % len(GIVEN)] if char in GIVEN else GIVEN[0]
