"""Migrations: running them, and refusing to run on a database whose schema is behind the code.

Alembic runs the migrations; the check that a database is at the code's heads reads the migration files'
`revision` / `down_revision` assignments and the `alembic_version` table itself, because importing alembic
costs a short command (the bulletin) more than everything else it does. `tests/db/test_migrations.py`
holds the two views to each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from cityhealth.db.engine import Database
from cityhealth.errors import ConfigurationError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"  # alembic's default, which migrations/env.py keeps


def migrations_dir() -> Path:
    """The migrations folder at the project root (the platform runs from its checkout, installed editable)."""
    root = Path(__file__).resolve().parents[3]
    folder = root / "migrations"
    if not (folder / "env.py").exists():
        raise ConfigurationError(f"migrations not found at {folder}; run cityhealth from its source checkout")
    return folder


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


# `revision = "…"` / `down_revision: str | None = …` at the start of a line, as alembic writes them.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _revision_and_parents(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """A migration file's `revision` and its `down_revision`s (none for a root); None if it is not one."""
    # The two top-level assignments only, not the whole module: parsing every migration cost more than the check.
    assigned = {name: ast.literal_eval(value) for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8"))}
    revision, parents = assigned.get("revision"), assigned.get("down_revision")
    if not isinstance(revision, str):
        return None
    if parents is None or isinstance(parents, str):
        return revision, () if parents is None else (parents,)
    if not isinstance(parents, tuple | list) or not all(isinstance(parent, str) for parent in parents):
        raise ConfigurationError(f"{path.name}: down_revision must be a revision id, a list of them or None")
    return revision, tuple(parents)


def head_revisions() -> frozenset[str]:
    """The code's heads: each domain's migrations form a branch off the registry's, so there may be several."""
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = _revision_and_parents(path)
        if found is not None:
            parents[found[0]] = found[1]
    below = {parent for ups in parents.values() for parent in ups}
    return frozenset(revision for revision in parents if revision not in below)


def _current_revisions(connection: Connection) -> frozenset[str]:
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    return frozenset(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())  # noqa: S608


async def current_revisions(database: Database) -> frozenset[str]:
    async with database.read_connection() as connection:
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
