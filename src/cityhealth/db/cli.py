"""`cityhealth db …`: migrate, and report the schema revision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer

from cityhealth.config import Settings, load_settings
from cityhealth.db.engine import Database
from cityhealth.db.schema import (
    alembic_config,
    current_revisions,
    ensure_durable,
    ensure_schema_current,
    head_revisions,
)

app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Migrate the configured database to `revision` (runs outside any event loop)."""
    from alembic import command  # here: the other commands only check the revision, without alembic

    command.upgrade(alembic_config(settings.effective_database_url), revision)


@asynccontextmanager
async def checked_database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, refused unless durable and at the code's schema revision."""
    database = Database(settings.effective_database_url)
    try:
        await ensure_durable(database)
        await ensure_schema_current(database)
        yield database
    finally:
        await database.dispose()


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("heads", help="target revision (default: every head)")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = load_settings()
    asyncio.run(_ensure_durable(settings))
    upgrade(settings, revision)
    typer.secho(f"database at revision {revision}", fg=typer.colors.GREEN, err=True)


@app.command("current")
def current_command() -> None:
    """Show the database's revision and the code's."""
    settings = load_settings()
    database = Database(settings.effective_database_url)

    async def show() -> frozenset[str]:
        try:
            return await current_revisions(database)
        finally:
            await database.dispose()

    current = asyncio.run(show())
    typer.echo(f"database: {', '.join(sorted(current)) or 'empty'}\ncode:     {', '.join(sorted(head_revisions()))}")


async def _ensure_durable(settings: Settings) -> None:
    database = Database(settings.effective_database_url)
    try:
        await ensure_durable(database)
    finally:
        await database.dispose()
