"""`cityhealth chronic …` and `cityhealth family …`, and the periodic rebuild of the patient-month table."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from cityhealth import queue
from cityhealth.cli import app as cli
from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.records import chronic, chronic_tasks
from cityhealth.records.chronic_models import ChronicPatientMonth
from cityhealth.registry import service as registry
from tests.factories.registry import count
from tests.records.family_support import centre, resident

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))


@pytest.mark.usefixtures("configured")
def test_the_commands_run_against_the_configured_database() -> None:
    rebuilt = runner.invoke(cli, ["chronic", "rebuild", "--month", "2022-06"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "chronic patient-months 2022-06: 0 rows" in rebuilt.output
    listed = runner.invoke(cli, ["chronic", "indicators", "--month", "2022-06"])
    assert listed.exit_code == 0, listed.output
    loaded = runner.invoke(cli, ["family", "load-populations"])
    assert loaded.exit_code == 0, loaded.output
    assert "population figures loaded for 0 areas" in loaded.output


@pytest.mark.usefixtures("configured")
def test_a_malformed_month_is_refused_by_the_command() -> None:
    refused = runner.invoke(cli, ["chronic", "rebuild", "--month", "2022-6"])
    assert refused.exit_code == 1
    assert "month" in refused.output


async def test_the_periodic_task_rebuilds_this_and_last_month(app: FastAPI, clock: SimulatedClock) -> None:
    chc = await centre(app)
    async with app.state.database.transaction() as session:
        await chronic.register(session, clock, registry.cipher_for(app.state.settings), None,
                               resident_id=await resident(app), program="hypertension",
                               registered_on=date(2022, 5, 20), organization_id=chc, source="clinic", source_ref=None)
    clock.set(datetime(2022, 7, 2, 3, tzinfo=BUSINESS_TZ))
    written = await chronic_tasks.rebuild_chronic_months(queue.Runtime(app.state.settings, app.state.database, clock))
    assert written == {"2022-06": 1, "2022-07": 1}
    assert await count(app.state.database, ChronicPatientMonth) == 2
