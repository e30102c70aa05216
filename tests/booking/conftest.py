"""Booking fixtures: the small city of tests/factories/booking.py on each test's own database, and the group
commit's leader held at its batch lock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from tests.booking.group_commit_support import HeldLeader
from tests.factories.booking import World, build_world


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())


@pytest.fixture
def leader(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldLeader]:
    held = HeldLeader(monkeypatch)
    yield held
    held.release()  # a failed test must not leave the leader waiting: the app's shutdown waits for it
