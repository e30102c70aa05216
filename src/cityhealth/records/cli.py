"""`cityhealth records …`: run the linker now, or rebuild the shared record's index from the stored records."""

from __future__ import annotations

import asyncio

import typer

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.records.linkage import PassCounts
from cityhealth.records.tasks import run_linker
from cityhealth.security.crypto import field_cipher

app = typer.Typer(help="The shared health record: patient linkage and its index.", no_args_is_help=True)


def _run(rebuild: bool, page: int) -> PassCounts:
    settings = load_settings()

    async def run() -> PassCounts:
        async with checked_database(settings) as database:
            return await run_linker(database, SystemClock(), field_cipher(settings), page=page, rebuild=rebuild)

    return asyncio.run(run())


def _print(counts: PassCounts) -> None:
    typer.echo(f"read={counts.read} indexed={counts.indexed} linked={counts.linked} queued={counts.queued} "
               f"unlinked={counts.unlinked}")


@app.command("link")
def link(page: int = typer.Option(1000, min=1, max=50_000, help="records per transaction")) -> None:
    """Link and index the records stored since the linker's last run."""
    _print(_run(False, page))


@app.command("rebuild")
def rebuild(page: int = typer.Option(1000, min=1, max=50_000, help="records per transaction")) -> None:
    """Empty the timeline index and fill it again from every stored record; links decided by an operator stay."""
    _print(_run(True, page))
