"""Booking fixtures: the small city of tests/factories/booking.py on each test's own database."""

from __future__ import annotations

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from tests.factories.booking import World, build_world


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())
