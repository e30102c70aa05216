"""Migrations: running them, and refusing to run on a database whose schema is behind the code."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from cityhealth.db.engine import Database
from cityhealth.errors import ConfigurationError, SchemaOutOfDate


def migrations_dir() -> Path:
    """The migrations folder at the project root (the platform runs from its checkout, installed editable)."""
    root = Path(__file__).resolve().parents[3]
    folder = root / "migrations"
    if not (folder / "env.py").exists():
        raise ConfigurationError(f"migrations not found at {folder}; run cityhealth from its source checkout")
    return folder


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def head_revisions() -> frozenset[str]:
    """The code's heads: each domain's migrations form a branch off the registry's, so there may be several."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


def _current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(database: Database) -> frozenset[str]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(_current_revisions)


async def ensure_schema_current(database: Database) -> None:
    """Raise SchemaOutOfDate, saying what to run, unless the database is at every head of the code."""
    current = await current_revisions(database)
    heads = head_revisions()
    if current != heads:
        state = "empty" if not current else "at revision " + ", ".join(sorted(current))
        raise SchemaOutOfDate(
            f"the database schema is {state} but this cityhealth needs revision "
            f"{', '.join(sorted(heads))}; run `cityhealth db upgrade` first"
        )


# PostgreSQL settings without which a committed write may be lost in a crash.
_DURABILITY_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
_ACCEPTED = {"synchronous_commit": {"on", "remote_write", "remote_apply", "local"}}


async def ensure_durable(database: Database) -> None:
    """Refuse PostgreSQL servers configured to lose committed data, naming the setting."""
    if database.is_sqlite:
        return
    async with database.engine.connect() as connection:
        for name, wanted in _DURABILITY_SETTINGS.items():
            value = (await connection.execute(text(f"SHOW {name}"))).scalar_one()
            if value not in _ACCEPTED.get(name, {wanted}):
                raise ConfigurationError(
                    f"PostgreSQL has {name}={value}; cityhealth refuses to run unless {name}={wanted} "
                    "(committed health data could be lost in a crash)"
                )
