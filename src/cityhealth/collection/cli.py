"""`cityhealth collection …`: code tables, the quality report, retention, operator settings, job re-runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from cityhealth.clock import SystemClock
from cityhealth.collection import configuration, service
from cityhealth.collection.ingest import Collector
from cityhealth.collection.jobs import process_job, reprocess_rejections
from cityhealth.collection.quality import quality_report
from cityhealth.collection.rejection_masking import mask_stored_rejections
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.db.engine import Database
from cityhealth.errors import DomainError

app = typer.Typer(
    help="Data collection: code tables, quality report, retention, enrolment, jobs.", no_args_is_help=True
)
console = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    settings = load_settings()

    async def main() -> T:
        async with checked_database(settings) as database:
            return await work(database)

    try:
        return asyncio.run(main())
    except DomainError as exc:
        console.print(f"[red]error ({exc.code}): {exc.message}[/red]")
        raise typer.Exit(1) from exc


@app.command("load-codes")
def load_codes(
    table: Annotated[str, typer.Argument(help="icd10 or icd9cm3")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="code,name lines")],
) -> None:
    """Load (replace) a code table from the government release: ICD-10 or ICD-9-CM-3."""
    table_id = {"icd10": "ICD-10", "icd-10": "ICD-10", "icd9cm3": "ICD-9-CM-3", "icd-9-cm-3": "ICD-9-CM-3"}.get(
        table.lower(), table
    )

    async def work(database: Database) -> tuple[int, int]:
        async with database.transaction() as session:
            return await service.load_codes(session, SystemClock(), table_id, file)

    count, generation = _run(work)
    console.print(f"[green]{table_id}: {count} codes loaded (generation {generation})[/green]")


@app.command("quality")
def quality(month: str = typer.Option(..., "--month", help="YYYY-MM")) -> None:
    """Print the monthly quality report (the bulletin's two data-collection tables) as JSON."""

    async def work(database: Database) -> dict[str, object]:
        async with database.transaction() as session:
            return await quality_report(session, month)

    typer.echo(json.dumps(_run(work), ensure_ascii=False, indent=1))


@app.command("purge")
def purge(
    retention_days: int | None = typer.Option(None, help="default CITYHEALTH_RAW_PAYLOAD_RETENTION_DAYS"),
) -> None:
    """Delete raw payloads older than the retention period."""
    settings = load_settings()

    async def work(database: Database) -> int:
        async with database.transaction() as session:
            return await service.purge(session, SystemClock(), retention_days or settings.raw_payload_retention_days)

    console.print(f"[green]{_run(work)} raw payload(s) purged[/green]")


@app.command("mask-rejections")
def mask_rejections() -> None:
    """Mask whole ID and mobile numbers in rejected rows stored before every field was masked (issue #12)."""
    console.print(f"[green]{_run(mask_stored_rejections)} rejected row(s) masked[/green]")


@app.command("enrol")
def enrol(
    organization: str = typer.Argument(..., help="organization code"),
    group: str = typer.Argument(..., help="outpatient or inpatient"),
    start: str = typer.Option(..., "--from", help="YYYY-MM-DD"),
    end: str | None = typer.Option(None, "--to", help="YYYY-MM-DD (open-ended if omitted)"),
) -> None:
    """Enrol a unit in real-time monitoring for a group from a date."""

    async def work(database: Database) -> int:
        async with database.transaction() as session:
            row = await configuration.enrol(
                session,
                SystemClock(),
                organization,
                group,
                date.fromisoformat(start),
                date.fromisoformat(end) if end else None,
            )
            return row.id

    console.print(f"[green]enrolment {_run(work)} recorded[/green]")


@app.command("assign-forms")
def assign_forms(
    organization: Annotated[str, typer.Argument(help="organization code")],
    forms: Annotated[list[str], typer.Argument(help="form codes, e.g. outpatient_visit discharge")],
    start: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
    end: str | None = typer.Option(None, "--to", help="YYYY-MM-DD"),
) -> None:
    """Record the forms a unit is expected to send."""

    async def work(database: Database) -> int:
        async with database.transaction() as session:
            rows = await configuration.assign_forms(
                session,
                SystemClock(),
                organization,
                forms,
                date.fromisoformat(start),
                date.fromisoformat(end) if end else None,
            )
            return len(rows)

    console.print(f"[green]{_run(work)} form assignment(s) recorded[/green]")


@app.command("opening-balance")
def opening_balance(
    kind: str = typer.Argument(
        ..., help="accepted_total, health_record_basic, health_record_hypertension or health_record_diabetes"
    ),
    count: int = typer.Argument(..., min=0),
    as_of: str = typer.Option(..., "--as-of", help="YYYY-MM-DD"),
    organization: str | None = typer.Option(None, help="organization code (accepted_total)"),
    area: str | None = typer.Option(None, help="area code (health records)"),
) -> None:
    """Record a cumulative figure carried over from an older platform."""

    async def work(database: Database) -> str:
        async with database.transaction() as session:
            row = await configuration.record_opening_balance(
                session,
                SystemClock(),
                kind,
                count,
                date.fromisoformat(as_of),
                organization_code=organization,
                area_code=area,
            )
            return row.scope

    console.print(f"[green]opening balance {kind} for {_run(work)} recorded[/green]")


@app.command("rerun-job")
def rerun_job(job_id: int = typer.Argument(...)) -> None:
    """Resume an unfinished job, or re-run a completed job's rejected rows after a code table fix."""
    settings = load_settings()

    async def work(database: Database) -> str:
        collector = Collector(settings)
        clock = SystemClock()
        async with database.transaction() as session:
            status = (await service.job_to_rerun(session, job_id)).status
        if status == "completed":
            return f"re-run: {await reprocess_rejections(database, collector, clock, job_id)}"
        await process_job(database, collector, clock, job_id)
        return "resumed and completed"

    console.print(f"[green]job {job_id}: {_run(work)}[/green]")
