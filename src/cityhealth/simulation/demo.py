"""The demo accounts `make demo` prints once its month is simulated: a resident and a family doctor.

The resident is the plan's (people.py): the same scenario, scale and seed give the same person, whose phone
signs in to the resident app. The family doctor is a staff account at that resident's community health centre,
created (or its password and second factor reset) by the web room's demo staff function, which the top layer
hands down as it hands down the platform's app factory. Development only, as that function checks.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SystemClock
from cityhealth.config import Settings
from cityhealth.registry import service as registry
from cityhealth.security.principals import Role
from cityhealth.simulation.actors import SimulationError
from cityhealth.simulation.care import COMMUNITY_HEALTH_CENTRE, centre_name
from cityhealth.simulation.people import SimResident, plan_people
from cityhealth.simulation.scenario import Scenario

DEMO_FAMILY_DOCTOR = "demo-family-doctor"


class StaffCredentials(Protocol):
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def totp_secret(self) -> str: ...


# (session, clock, settings, *, actor, username, display_name, roles, organization_id) -> the account's credentials
DemoStaff = Callable[..., Awaitable[StaffCredentials]]


@dataclass(frozen=True)
class DemoAccounts:
    resident: SimResident
    centre: str
    doctor: StaffCredentials


async def demo_accounts(session: AsyncSession, settings: Settings, scenario: Scenario, scale: Decimal, seed: int,
                        demo_staff: DemoStaff) -> DemoAccounts:
    """The plan's demo resident, and the demo family doctor of their centre (which the month registered); the
    caller's transaction holds the account."""
    demo = plan_people(scenario, scale, seed).demo()
    if demo is None:
        raise SimulationError("the scenario has no residents to offer (no collection figures)",
                              code="simulation_no_demo_resident")
    resident, centre = demo
    clock = SystemClock()
    name, organization_id = await _centre(session, clock, centre.organization_area, centre.area_name)
    doctor = await demo_staff(session, clock, settings, actor=f"cli:{getpass.getuser()}",
                              username=DEMO_FAMILY_DOCTOR, display_name=f"{name} 演示家庭医生",
                              roles=frozenset({Role.FAMILY_DOCTOR}), organization_id=organization_id)
    return DemoAccounts(resident, name, doctor)


async def _centre(session: AsyncSession, clock: SystemClock, area_code: str, area_name: str) -> tuple[str, int]:
    page = await registry.list_organizations(session, clock, kind=COMMUNITY_HEALTH_CENTRE, area_code=area_code,
                                             limit=500)
    rows = [(row.name, row.id) for row in page.items]
    name = centre_name([row_name for row_name, _ in rows], area_name)
    found = [row_id for row_name, row_id in rows if row_name == name]
    if not found:
        raise SimulationError(f"no centre {name} in the registry: simulate the month first",
                              code="simulation_not_run")
    return name, found[0]
