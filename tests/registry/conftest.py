"""The registry tests' shared fixtures: the small area tree and the field cipher of the test settings."""

from __future__ import annotations

import pytest
from tests.factories.registry import seed_areas

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from cityhealth.security.crypto import FieldCipher


@pytest.fixture
async def seeded_areas(database: Database, clock: SimulatedClock) -> None:
    """The small area tree (tests.factories.registry.SMALL_AREA_TREE); a module asks for it with `usefixtures`."""
    await seed_areas(database, clock)


@pytest.fixture
def cipher(settings: Settings) -> FieldCipher:
    return cipher_for(settings)
