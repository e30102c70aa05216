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


# What a bulletin has no use for: the web server and framework, the simulator, the upload validators and
# ingest, a plotting library. Importing any of them costs a fresh `cityhealth bulletin` its 2 s budget.
NOT_FOR_THE_BULLETIN = (
    "fastapi", "starlette", "uvicorn", "httpx", "matplotlib", "cityhealth.app", "cityhealth.web",
    "cityhealth.simulation", "cityhealth.collection.validation", "cityhealth.collection.ingest",
    "cityhealth.collection.api", "cityhealth.booking.api",
)
_PROBE = """
import json, sys
from cityhealth.cli import main
output = sys.argv[1]
for edition in ("json", "md", "html", "docx"):
    sys.argv = ["cityhealth", "bulletin", "--month", "2022-06", "--region", "320100", "--format", edition,
                "--output", output + "." + edition]
    try:
        main()
    except SystemExit as exit:
        assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""


def test_the_bulletin_from_the_database_imports_neither_the_server_nor_the_validators(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os
    import subprocess
    import sys

    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["registry", "load-reference", "nanjing"]).exit_code == 0
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _PROBE, str(tmp_path / "bulletin")], capture_output=True, text=True,
        env=dict(os.environ), check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "cityhealth.reporting.sources" in loaded  # it did read the database
    assert (tmp_path / "bulletin.docx").stat().st_size > 0
    pulled = [name for name in loaded if any(name == top or name.startswith(f"{top}.") for top in NOT_FOR_THE_BULLETIN)]
    assert pulled == []


def test_help_lists_every_command() -> None:
    from cityhealth.cli import COMMANDS, GROUPS

    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert {*GROUPS, *COMMANDS, "serve"} <= listed


def test_serve_with_two_workers_writes_the_access_log_from_the_worker_processes(
        database_url: str, tmp_path: Path) -> None:
    # uvicorn spawns the workers: each one must configure logging itself, or requests leave no line.
    import json
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CITYHEALTH_ENV": "test", "CITYHEALTH_DATABASE_URL": database_url,
           "CITYHEALTH_VAR_DIR": str(tmp_path / "var"), "CITYHEALTH_LOG_LEVEL": "INFO"}
    server = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-c", "from cityhealth.cli import main; main()", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    answered = 0
    try:
        deadline = time.monotonic() + 90
        while answered < 3 and time.monotonic() < deadline and server.poll() is None:
            try:
                answered += httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    assert answered == 3, stderr[-3000:]
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("message") == "request" and line.get("status") == 200]
    assert len(access) == 3, stderr[-3000:]
    assert {line["method"] for line in access} == {"GET"}


@pytest.mark.parametrize(("arguments", "periodic"), [([], True), (["--no-periodic"], False)])
def test_a_worker_runs_the_periodic_work_unless_told_not_to(
    arguments: list[str], periodic: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A simulated month's workers take its bulk jobs only: periodic work on the system clock would sweep the
    # month's holds and escalate its follow-ups by today's date.
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from typing import Any

    from cityhealth import worker
    from cityhealth.db import cli as db_cli

    @asynccontextmanager
    async def no_database(_settings: Any) -> AsyncIterator[object]:
        yield object()

    asked: list[bool] = []

    async def run_worker(_runtime: Any, *, concurrency: int, run_periodic: bool) -> None:
        asked.append(run_periodic)

    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/not_opened")
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(db_cli, "checked_database", no_database)
    monkeypatch.setattr(worker, "run_worker", run_worker)
    result = runner.invoke(app, ["worker", *arguments])
    assert result.exit_code == 0, result.output
    assert asked == [periodic]
