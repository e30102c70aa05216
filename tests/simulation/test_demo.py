"""`simulate --demo-accounts`: the plan's demo resident, and a demo family doctor at that resident's centre."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyotp
import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from cityhealth.registry import service as registry
from cityhealth.security import staff
from cityhealth.security.principals import Role
from cityhealth.simulation.actors import SimulationError
from cityhealth.simulation.demo import DEMO_FAMILY_DOCTOR, DemoAccounts, demo_accounts
from cityhealth.simulation.people import plan_people
from cityhealth.simulation.scenario import bundled_scenario, load_scenario
from cityhealth.web.demo import ensure_demo_staff
from tests.factories.registry import seed_areas

SCENARIO = load_scenario(bundled_scenario("nanjing-2022-06"))
SCALE = Decimal("0.01")


@pytest.fixture
def development(settings: Settings) -> Settings:
    return settings.model_copy(update={"env": Environment.DEVELOPMENT})


async def _accounts(database: Database, settings: Settings) -> DemoAccounts:
    async with database.transaction() as session:
        return await demo_accounts(session, settings, SCENARIO, SCALE, 1, ensure_demo_staff)


async def _centre(database: Database, clock: SimulatedClock) -> int:
    """The centre the simulator registers for the demo resident's area (玄武区 has none in the registry)."""
    await seed_areas(database, clock)
    async with database.transaction() as session:
        centre = await registry.insert_organization(session, clock, {
            "name": "玄武区社区卫生服务中心", "kind": "community_health_centre", "area_code": "320102",
            "active_from": date(2022, 5, 1)})
        return centre.id


async def test_the_demo_family_doctor_signs_in_at_the_demo_residents_centre(
        database: Database, clock: SimulatedClock, development: Settings) -> None:
    centre_id = await _centre(database, clock)
    accounts = await _accounts(database, development)
    demo = plan_people(SCENARIO, SCALE, 1).demo()
    assert demo is not None
    assert accounts.resident == demo[0]
    assert accounts.centre == "玄武区社区卫生服务中心"
    async with database.transaction() as session:
        result = await staff.login(session, clock, development, username=DEMO_FAMILY_DOCTOR,
                                   password=accounts.doctor.password,
                                   totp=pyotp.TOTP(accounts.doctor.totp_secret).at(clock.now()), source_address=None)
    assert result.principal is not None
    assert result.principal.roles == frozenset({Role.FAMILY_DOCTOR})
    assert result.principal.organization_id == centre_id


async def test_asking_again_resets_the_demo_family_doctors_password(
        database: Database, clock: SimulatedClock, development: Settings) -> None:
    await _centre(database, clock)
    first = await _accounts(database, development)
    second = await _accounts(database, development)
    assert second.doctor.password != first.doctor.password
    assert second.doctor.username == first.doctor.username == DEMO_FAMILY_DOCTOR


async def test_before_the_month_is_simulated_there_is_no_centre_and_no_account(
        database: Database, clock: SimulatedClock, development: Settings) -> None:
    await seed_areas(database, clock)
    with pytest.raises(SimulationError) as raised:
        await _accounts(database, development)
    assert raised.value.code == "simulation_not_run"
    async with database.transaction() as session:
        assert await staff.find_staff_user(session, DEMO_FAMILY_DOCTOR) is None
