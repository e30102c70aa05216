"""The root CLI: version, migrations, and refusing to serve on an out-of-date schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth import __version__
from cityhealth.cli import app

runner = CliRunner()


def test_version_is_printed() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"cityhealth {__version__}"


def test_db_upgrade_then_current_reports_every_head(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    before = runner.invoke(app, ["db", "current"])
    assert "database: empty" in before.stdout
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    after = runner.invoke(app, ["db", "current"])
    database_line, code_line = after.stdout.splitlines()
    assert database_line.removeprefix("database: ") == code_line.removeprefix("code:").strip()


def test_serve_refuses_a_database_behind_the_code(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhealth.errors import SchemaOutOfDate

    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    result = runner.invoke(app, ["serve", "--port", "8999"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SchemaOutOfDate)
    assert "cityhealth db upgrade" in str(result.exception)


@pytest.mark.parametrize(("arguments", "mounted"), [
    (["bulletin", "--month", "2022-06"], "bulletin"),
    (["collection", "quality", "--month", "2022-06"], "collection"),
    (["serve"], "serve"),
    (["--version"], ""),
    ([], None),
    (["--help"], None),
    (["no-such-command"], None),
])
def test_main_mounts_only_the_named_group(arguments: list[str], mounted: str | None) -> None:
    from cityhealth.cli import _named

    assert _named(arguments) == mounted


def test_the_bulletin_command_does_not_import_the_server_or_the_other_rooms() -> None:
    import subprocess
    import sys

    probe = ("import sys; sys.argv = ['cityhealth', 'bulletin', '--help']\n"
             "from cityhealth.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "rooms = ('cityhealth.app', 'cityhealth.web', 'cityhealth.simulation')\n"
             "print(sorted(m for m in rooms if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
    assert result.stdout.strip().splitlines()[-1] == "[]"
