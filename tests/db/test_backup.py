"""`cityhealth db backup` / `db restore` (SQLite): a copy taken under writes is one commit's state, a restore
is refused over an open database or from a damaged copy, and a restored database passes `audit verify`."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.collection.conftest import Unit, post_records
from tests.conftest import BACKEND
from tests.factories.collection import add_organization, make_record
from tests.factories.security import headers_for, machine
from typer.testing import CliRunner

from cityhealth.cli import app as cli
from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import DailyCount, Record
from cityhealth.db import backup as backups
from cityhealth.db.engine import Database
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.principals import Scope

runner = CliRunner()
sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="the platform under write is on SQLite here")
BATCH = 20


@pytest.fixture
async def hospital(app: FastAPI, database: Database, clock: SimulatedClock) -> Unit:
    org = await add_organization(database, clock, "H0001", name="南京鼓楼医院")
    return Unit(org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id)))


async def _upload(client: httpx.AsyncClient, unit: Unit, clock: SimulatedClock, batch: int) -> None:
    at = clock.now() - timedelta(hours=2)
    records = [make_record("outpatient_visit", unit.code, f"b{batch}-{i}", at) for i in range(BATCH)]
    response = await post_records(client, unit, "outpatient_visit", records)
    assert response.status_code == 200, response.text


async def _stored_and_counted(path: Path) -> tuple[int, int]:
    database = Database(f"sqlite:///{path}")
    try:
        async with database.transaction() as session:
            stored = (await session.execute(select(func.count()).select_from(Record))).scalar_one()
            counted = (await session.execute(select(func.coalesce(func.sum(DailyCount.accepted), 0)))).scalar_one()
        return int(stored), int(counted)
    finally:
        await database.dispose()


async def _chain_intact(path: Path) -> int:
    database = Database(f"sqlite:///{path}")
    try:
        result = await verify_chain(database)
    finally:
        await database.dispose()
    assert result.problem is None, result.problem
    return result.checked


@sqlite_only
async def test_a_backup_taken_during_uploads_holds_whole_batches_counted_and_chained(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, tmp_path: Path
) -> None:
    database_file = backups.sqlite_path(str(database.url))
    await _upload(client, hospital, clock, 0)
    copy = tmp_path / "copy.sqlite"

    async def keep_uploading() -> int:
        batch = 1
        while not copying.done():
            await _upload(client, hospital, clock, batch)
            batch += 1
        return batch

    copying = asyncio.ensure_future(asyncio.to_thread(backups.backup, database_file, copy))
    batches = await keep_uploading()
    report = await copying
    stored, counted = await _stored_and_counted(copy)
    assert stored % BATCH == 0
    assert 0 < stored <= batches * BATCH
    assert counted == stored
    assert await _chain_intact(copy) == report.audit_events > 0


def _copy_of_fresh_database(tmp_path: Path, migrated_template: str) -> tuple[Path, Path]:
    database = tmp_path / "live.sqlite"
    database.write_bytes(Path(migrated_template).read_bytes())
    copy = tmp_path / "copy.sqlite"
    backups.backup(database, copy)
    return database, copy


@pytest.mark.skipif(BACKEND != "sqlite", reason="the migrated template is a SQLite file on this backend")
def test_restore_over_a_database_another_process_holds_open_is_refused_unless_forced(
    tmp_path: Path, migrated_template: str
) -> None:
    database, copy = _copy_of_fresh_database(tmp_path, migrated_template)
    holder = subprocess.Popen(  # noqa: S603 - this interpreter, fixed code; an open connection with the WAL index mapped, as a running server has
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('PRAGMA journal_mode=WAL'); c.execute('SELECT count(*) FROM alembic_version').fetchall(); "
         "print('open', flush=True); sys.stdin.read()", str(database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"open\n"
        assert backups.in_use(database)
        with pytest.raises(backups.BackupError, match="open in a running process"):
            backups.restore(copy, database)
        assert backups.restore(copy, database, force=True).path == database
    finally:
        holder.communicate(b"")
    assert not backups.in_use(database)


@pytest.mark.skipif(BACKEND != "sqlite", reason="the migrated template is a SQLite file on this backend")
def test_restore_from_a_damaged_copy_is_refused_and_leaves_the_database_as_it_was(
    tmp_path: Path, migrated_template: str
) -> None:
    database, copy = _copy_of_fresh_database(tmp_path, migrated_template)
    before = database.read_bytes()
    damaged = bytearray(copy.read_bytes())
    damaged[len(damaged) // 2 : len(damaged) // 2 + 4096] = b"\xff" * 4096
    copy.write_bytes(bytes(damaged))
    with pytest.raises(backups.BackupError, match=r"integrity|not a readable"):
        backups.restore(copy, database)
    assert database.read_bytes() == before
    assert not list(tmp_path.glob(".*.partial"))


def test_a_file_that_is_not_a_cityhealth_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    with pytest.raises(backups.BackupError, match="no alembic_version table"):
        backups.check_copy(other)


def test_backup_of_a_postgresql_database_is_refused_naming_the_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    result = runner.invoke(cli, ["db", "backup", str(tmp_path / "copy")])
    assert result.exit_code == 1
    assert "base backup and WAL archiving" in result.stderr
    assert not (tmp_path / "copy").exists()


@sqlite_only
async def test_restore_brings_back_the_backup_and_audit_verify_passes(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    database_file = backups.sqlite_path(str(database.url))
    await _upload(client, hospital, clock, 0)
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", f"sqlite:///{database_file}")
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "cli-var"))
    copy = tmp_path / "copy.sqlite"
    backed_up = await asyncio.to_thread(runner.invoke, cli, ["db", "backup", str(copy)])
    assert backed_up.exit_code == 0, backed_up.output
    await _upload(client, hospital, clock, 1)
    assert await _stored_and_counted(database_file) == (2 * BATCH, 2 * BATCH)
    await database.dispose()  # the server stopped: its pool closed
    restored = await asyncio.to_thread(runner.invoke, cli, ["db", "restore", str(copy)])
    assert restored.exit_code == 0, restored.output
    assert await _stored_and_counted(database_file) == (BATCH, BATCH)
    verified = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "audit trail intact" in verified.stdout
