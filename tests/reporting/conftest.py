"""The Nanjing scenario (every figure of the June 2022 bulletin), located as scenario-format.md describes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cityhealth.reporting.model import BulletinData

REPO_ROOT = Path(__file__).resolve().parents[2]
NANJING = "nanjing-2022-06.json"


def scenario_path(name: str = NANJING) -> Path:
    directory = os.environ.get("CITYHEALTH_SCENARIO_DIR")
    base = Path(directory) if directory else REPO_ROOT.parent / "shared" / "scenarios"
    return base / name


@pytest.fixture
def nanjing_text() -> str:
    path = scenario_path()
    if not path.is_file():
        pytest.skip(f"scenario file {path} is not present (set CITYHEALTH_SCENARIO_DIR)")
    return path.read_text(encoding="utf-8")


@pytest.fixture
def nanjing_scenario(nanjing_text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(nanjing_text)
    return document


@pytest.fixture
def nanjing(nanjing_text: str) -> BulletinData:
    return BulletinData.from_json(nanjing_text)
