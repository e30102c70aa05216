"""`cityhealth db …`: migrate, report the schema revision, back up and restore (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer

from cityhealth.config import Settings, load_settings
from cityhealth.db import backup as backups
from cityhealth.db.engine import Database
from cityhealth.db.schema import (
    alembic_config,
    current_revisions,
    ensure_durable,
    ensure_schema_current,
    head_revisions,
)

app = typer.Typer(help="Database schema: migrate and inspect; back up and restore SQLite.", no_args_is_help=True)


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


def _report(verb: str, report: backups.CopyReport) -> None:
    typer.echo(f"{verb} {report.path}: {report.size_bytes} bytes, integrity ok, revision "
               f"{', '.join(report.revisions)}, {report.audit_events} audit events")


@app.command("backup")
def backup_command(
    path: Annotated[Path, typer.Argument(help="file to write the copy to (replaced if it exists)")],
) -> None:
    """Copy the SQLite database to PATH while the platform runs (SQLite's online backup API), checked."""
    settings = load_settings()
    try:
        report = backups.backup(backups.sqlite_path(settings.effective_database_url), path)
    except backups.BackupError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    _report("backed up to", report)


@app.command("restore")
def restore_command(
    path: Annotated[Path, typer.Argument(help="a copy made by `cityhealth db backup`")],
    force: Annotated[bool, typer.Option("--force", help="replace the database even while a process has it "
                                                        "open (stop the server and workers first instead)")] = False,
) -> None:
    """Replace the SQLite database with the copy at PATH, checked before and after; then run `audit verify`."""
    settings = load_settings()
    try:
        report = backups.restore(path, backups.sqlite_path(settings.effective_database_url), force=force)
    except backups.BackupError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    _report("restored", report)
    typer.echo("next: `cityhealth audit verify` (with --anchor of a head the copy holds, if an anchor saved "
               "after the backup was taken would otherwise be missing)")
