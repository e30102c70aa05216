"""`cityhealth hotline …`: city lines, the escalation by hand and the month's figures from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.cli import app

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))


@pytest.mark.usefixtures("configured")
def test_an_operator_registers_a_city_line_and_lists_it() -> None:
    saved = runner.invoke(app, ["hotline", "set-line", "0512-12320", "--city", "320500", "--name", "苏州市"])
    assert saved.exit_code == 0, saved.output
    listed = runner.invoke(app, ["hotline", "lines"])
    assert "0512-12320" in listed.output
    assert "320500" in listed.output


@pytest.mark.usefixtures("configured")
def test_a_city_line_with_a_malformed_city_code_is_refused() -> None:
    refused = runner.invoke(app, ["hotline", "set-line", "0512-12320", "--city", "5000", "--name", "苏州市"])
    assert refused.exit_code == 1
    assert "city_code" in refused.output


@pytest.mark.usefixtures("configured")
def test_the_escalation_and_the_figures_run_against_the_configured_database() -> None:
    escalated = runner.invoke(app, ["hotline", "escalate"])
    assert escalated.exit_code == 0, escalated.output
    assert "escalated: 0" in escalated.output
    figures = runner.invoke(app, ["hotline", "call-figures", "2022-06"])
    assert figures.exit_code == 0, figures.output
    assert json.loads(figures.output)["total"] == 0
    month = runner.invoke(app, ["hotline", "month-figures", "2022-06", "--region", "320100"])
    assert month.exit_code == 0, month.output
    assert json.loads(month.output)["self_service"] == {"asked": 0, "answered": 0, "answer_rate_pct": None}
    assert json.loads(month.output)["work_orders"] == {"city_12345": 0, "province_12345": 0, "self_received": 0}
    assert json.loads(month.output)["work_order_performance"] == {
        "closed": 0, "closed_on_time": 0, "on_time_rate_pct": None, "callbacks": 0, "satisfied": 0,
        "basically_satisfied": 0, "dissatisfied": 0, "satisfaction_rate_pct": None}
    refused = runner.invoke(app, ["hotline", "month-figures", "2022-6", "--region", "320100"])
    assert refused.exit_code == 1
    assert "YYYY-MM" in refused.output
