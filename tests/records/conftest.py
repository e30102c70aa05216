"""Fixtures of the records tests: the booking factory's small city (two hospitals, a department, apps)."""

from __future__ import annotations

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from tests.factories.booking import World, build_world


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())
