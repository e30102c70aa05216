"""A small scenario of any month, for tests that need a whole month in seconds (not only Nanjing June 2022)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cityhealth.simulation.scenario import Scenario, load_scenario

SMALL: dict[str, Any] = {
    "format": "cityhealth-scenario/1",
    "title": "a small city month",
    "month": "2024-02",  # a leap February: 29 days
    "region": {"code": "320100", "name": "南京市"},
    "areas": [{"code": "320115", "name": "江宁区"}],
    "booking": {
        "by_hospital": [
            {"hospital": "测试第一医院", "online_12320": 30, "phone": 20, "clinic": 15, "third_party": 10},
        ],
        "by_app": [{"app": "健康测试客户端", "bookings": 25}],
        "cumulative_at_month_end": 1000,
    },
    "collection": {
        "districts": [{
            "area": "320115", "name": "江宁区", "uploaded_records": 400, "upload_days": 10, "realtime_forms": 4,
            "outpatient_visits": 50, "discharges": 5, "outpatient_conformance_basis": 100,
            "outpatient_conformance_pct": "75.00", "discharge_conformance_basis": 20,
            "discharge_conformance_pct": "50.00",
            "health_records_cumulative": {"basic": 300, "hypertension": 40, "diabetes": 20},
        }],
        "hospitals": [
            {"hospital": "测试第一医院", "uploaded_records": 300, "upload_days": 28, "realtime_forms": 11,
             "outpatient_visits": 40, "discharges": 6, "outpatient_conformance_basis": 120,
             "outpatient_conformance_pct": "90.00", "discharge_conformance_basis": 30,
             "discharge_conformance_pct": "80.00"},
            {"hospital": "测试社区医院", "uploaded_records": 40, "upload_days": 4, "realtime_forms": 2,
             "outpatient_visits": 8, "discharges": 0, "outpatient_conformance_basis": 10,
             "outpatient_conformance_pct": "100.00", "discharge_conformance_basis": None,
             "discharge_conformance_pct": None},
        ],
        "cumulative_accepted_at_month_end": 5000,
    },
}


def small(**changes: Any) -> dict[str, Any]:
    """SMALL with top-level keys replaced."""
    raw = copy.deepcopy(SMALL)
    raw.update(changes)
    return raw


def write(raw: dict[str, Any], directory: Path, name: str = "scenario.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def load(raw: dict[str, Any], directory: Path) -> Scenario:
    return load_scenario(write(raw, directory))
