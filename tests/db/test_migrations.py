"""Migrations run up from empty and down again on the backend under test; a schema-behind DB is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from cityhealth import queue
from cityhealth.app import create_app
from cityhealth.config import Environment, Settings
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.db.schema import alembic_config, current_revisions, ensure_schema_current, head_revisions
from cityhealth.errors import SchemaOutOfDate
from cityhealth.models import metadata

REGISTRY_FIRST_REVISION = "20261126_0230"


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(env=Environment.TEST, database_url=url, var_dir=tmp_path / "var")


async def _tables(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await database.dispose()


def test_migrations_run_up_from_empty_and_down_to_nothing(empty_database_url: str, tmp_path: Path) -> None:
    settings = _settings(empty_database_url, tmp_path)
    upgrade(settings)
    tables = asyncio.run(_tables(empty_database_url))
    assert set(metadata.tables) <= tables
    command.downgrade(alembic_config(empty_database_url), "base")
    assert asyncio.run(_tables(empty_database_url)) <= {"alembic_version"}
    upgrade(settings)  # and up again: downgrades leave nothing behind that blocks a re-run
    assert set(metadata.tables) <= asyncio.run(_tables(empty_database_url))


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "include_name": queue.is_queue_schema}
    )
    return list(compare_metadata(context, metadata))


async def test_migrations_create_exactly_what_the_models_declare(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    assert differences == []


async def test_a_database_behind_the_code_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    settings = _settings(empty_database_url, tmp_path)
    await asyncio.to_thread(upgrade, settings, REGISTRY_FIRST_REVISION)
    database = Database(empty_database_url)
    try:
        with pytest.raises(SchemaOutOfDate, match="cityhealth db upgrade"):
            await ensure_schema_current(database)
        app = create_app(settings, database=database)
        with pytest.raises(SchemaOutOfDate):
            async with app.router.lifespan_context(app):
                pass
    finally:
        await database.dispose()


async def test_an_empty_database_is_refused_saying_what_to_run(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"schema is empty.*run `cityhealth db upgrade`"):
            await ensure_schema_current(database)
    finally:
        await database.dispose()


def test_the_heads_read_from_the_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revisions() == frozenset(script.get_heads())


async def test_the_current_revisions_read_from_the_table_are_alembics(empty_database_url: str, tmp_path: Path) -> None:
    database = Database(empty_database_url)
    try:
        assert await current_revisions(database) == frozenset()
        await asyncio.to_thread(upgrade, _settings(empty_database_url, tmp_path))
        async with database.engine.connect() as connection:
            alembic_view = await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads())
        assert await current_revisions(database) == frozenset(alembic_view) == head_revisions()
    finally:
        await database.dispose()


def test_every_domain_branch_has_one_head() -> None:
    heads = head_revisions()
    assert heads, "no migrations found"
    assert len(heads) == len(set(heads))


def test_no_two_migrations_share_a_revision_id() -> None:
    # Alembic only warns about a repeated id and then loses one of the two migrations: two branches
    # written on the same day once both took 20261205_0030, and one of their tables was never created.
    ids = [line.split('"')[1] for path in sorted((Path(__file__).parents[2] / "migrations" / "versions").glob("*.py"))
           for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("revision: str = ")]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


async def test_the_health_record_number_backfill_fills_the_public_health_records_only(
    empty_database_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from cityhealth.collection.models import Record

    settings = _settings(empty_database_url, tmp_path)
    await asyncio.to_thread(upgrade, settings, "20261205_0120")  # the column, still empty for stored records
    moment = datetime(2022, 6, 15, 1, 30, tzinfo=UTC)
    common = {"organization_id": 1, "version": 1, "action": 1, "payload_hash": "0" * 32, "event_time": moment,
              "event_month": 202206, "first_received_at": moment, "received_at": moment, "conformance": 0}
    database = Database(empty_database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(insert(Record), [
                {**common, "form": "health_record", "record_id": "hr-1", "fields": {"record_no": "32011500100100001"}},
                {**common, "form": "diabetes_followup", "record_id": "g-1",
                 "fields": {"health_record_no": "32011500100100042"}},
                {**common, "form": "outpatient_visit", "record_id": "v-1", "fields": {"record_no": "not a number"}},
            ])
        await asyncio.to_thread(upgrade, settings, "20261205_0125")
        async with database.engine.connect() as connection:
            filled = (await connection.execute(
                select(Record.record_id, Record.health_record_no).order_by(Record.record_id))).all()
    finally:
        await database.dispose()
    assert [tuple(row) for row in filled] == [
        ("g-1", "32011500100100042"), ("hr-1", "32011500100100001"), ("v-1", None)]
