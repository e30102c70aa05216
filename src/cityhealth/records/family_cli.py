"""`cityhealth family …`: load the shipped population figures the contract rate divides by."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.records import family_teams

app = typer.Typer(help="Family doctors: reference data.", no_args_is_help=True)
console = Console()


@app.command("load-populations")
def load_populations() -> None:
    """Load the shipped resident population figures for the areas the registry holds (again: no change)."""
    settings = load_settings()

    async def run() -> int:
        async with checked_database(settings) as database, database.transaction() as session:
            return await family_teams.load_populations(session, SystemClock())

    console.print(f"population figures loaded for {asyncio.run(run())} areas")
