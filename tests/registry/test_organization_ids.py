"""registry.OrganizationIds: the ids a long-running process looks up by code, each trusted for a while."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from tests.factories.registry import organization_payload, seed_areas

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry import service
from cityhealth.registry.models import Organization

pytestmark = pytest.mark.asyncio


async def _register(database: Database, clock: SimulatedClock, code: str) -> int:
    async with database.transaction() as session:
        organization = await service.insert_organization(session, clock, organization_payload(code=code))
        return organization.id


async def _ask(database: Database, known: service.OrganizationIds, *codes: str) -> dict[str, int]:
    async with database.transaction() as session:
        return await known.by_code(session, codes)


async def test_an_id_found_is_kept_for_the_ttl_and_a_code_not_found_is_asked_again(
    database: Database, clock: SimulatedClock
) -> None:
    await seed_areas(database, clock)
    first = await _register(database, clock, "LAB-A")
    known = service.OrganizationIds(clock, ttl=timedelta(seconds=60))
    assert await _ask(database, known, "LAB-A", "LAB-B") == {"LAB-A": first}

    second = await _register(database, clock, "LAB-B")  # registered after it was asked for: counted at once
    assert await _ask(database, known, "LAB-A", "LAB-B") == {"LAB-A": first, "LAB-B": second}

    # The registry's answer changes (a code given to another organization, as an operator's correction would);
    # the process goes on with what it read until the ttl has passed, then reads it again.
    async with database.transaction() as session:
        await session.execute(update(Organization).where(Organization.id == first).values(code="LAB-A-OLD"))
    clock.advance(timedelta(seconds=59))
    assert await _ask(database, known, "LAB-A") == {"LAB-A": first}
    clock.advance(timedelta(seconds=2))
    assert await _ask(database, known, "LAB-A") == {}
    assert await _ask(database, known) == {}
