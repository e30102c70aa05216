"""Fixtures of the records tests: the booking factory's small city (two hospitals, a department, apps), and the
whole of it with the app, its client, database, settings and clock (tests/records/support.py's City)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, build_world
from tests.records.support import City


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())


@pytest.fixture
def city(app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
         world: World) -> City:
    return City(app, client, database, settings, clock, world)
