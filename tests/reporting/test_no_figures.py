"""A month the platform holds nothing for gets a clear refusal, never an empty bulletin."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.reporting.service import build_bulletin
from cityhealth.reporting.sources import NoFigures
from tests.factories.registry import seed_areas

runner = CliRunner()


@pytest.mark.parametrize("region", [None, "320100"])
async def test_a_month_without_figures_is_refused_with_or_without_a_region(
    database: Database, clock: SimulatedClock, region: str | None
) -> None:
    await seed_areas(database, clock)
    async with database.transaction() as session:
        with pytest.raises(NoFigures) as raised:
            await build_bulletin(session, "2022-05", region_code=region)
    assert (raised.value.status, raised.value.field, raised.value.value) == (404, "month", "2022-05")
    assert raised.value.rule == "bulletin.month.has_figures"


# On PostgreSQL the read is one REPEATABLE READ snapshot: an isolation level set after the transaction's first
# statement is ignored with this warning, so the sources would each read their own instant.
@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
def test_the_command_says_the_month_holds_no_figures_and_writes_nothing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhealth.cli import app

    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    output = tmp_path / "may.docx"
    result = runner.invoke(app, ["bulletin", "--month", "2022-05", "--format", "docx", "--output", str(output)])
    assert result.exit_code == 1
    assert "error: the platform holds no figures for 2022-05" in result.stderr
    assert not output.exists()
