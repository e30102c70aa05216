"""The Nanjing scenario (every figure of the June 2022 bulletin), the copy bundled with the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityhealth.reporting.model import BulletinData
from cityhealth.simulation.scenario import bundled_scenario

NANJING = "nanjing-2022-06"


def scenario_path(name: str = NANJING) -> Path:
    return bundled_scenario(name)


@pytest.fixture
def nanjing_text() -> str:
    return scenario_path().read_text(encoding="utf-8")


@pytest.fixture
def nanjing_scenario(nanjing_text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(nanjing_text)
    return document


@pytest.fixture
def nanjing(nanjing_text: str) -> BulletinData:
    return BulletinData.from_json(nanjing_text)
