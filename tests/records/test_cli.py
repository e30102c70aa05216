"""`cityhealth records link` and `rebuild` against the configured database: the linker's pass from the command
line, and the index emptied and filled again from the stored records."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.cli import app as cli
from tests.records.support import City


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
async def uploaded(city: City) -> None:
    """A resident's master record and a visit, stored by the collection room, not yet linked."""
    await city.registered(3)
    await city.visited()


@pytest.mark.usefixtures("configured", "uploaded")
def test_link_then_rebuild_read_every_stored_record_and_index_the_same() -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["records", "link"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "read=2 indexed=1 linked=1 queued=0 unlinked=0"
    rebuilt = runner.invoke(cli, ["records", "rebuild", "--page", "1"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.output.strip() == "read=2 indexed=1 linked=0 queued=0 unlinked=0"  # the link stands


@pytest.mark.usefixtures("configured")
def test_a_page_of_no_records_is_refused() -> None:
    refused = CliRunner().invoke(cli, ["records", "link", "--page", "0"])
    assert refused.exit_code == 2
