"""`cityhealth booking …`: the scheduled jobs as commands an operator or cron runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("command", "expected"), [
    ("sweep", "expired holds: 0"),
    ("mark-no-shows", "no-shows: 0"),
    ("dispatch-notifications", "sent: 0"),
])
def test_job_commands_run_against_the_configured_database(
        command: str, expected: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    result = runner.invoke(app, ["booking", command])
    assert result.exit_code == 0, result.output
    assert expected in result.output
