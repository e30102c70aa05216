"""`cityhealth chronic …`: rebuild a month's patient-month table, print its indicators."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import typer
from rich.console import Console

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.records import chronic_indicators
from cityhealth.records.chronic_schemas import IndicatorRow

app = typer.Typer(help="Chronic disease management: the monthly indicators.", no_args_is_help=True)
console = Console()
Month = Annotated[str, typer.Option(help="the month, YYYY-MM")]


@app.command("rebuild")
def rebuild(month: Month) -> None:
    """Refill the month's patient-month table from the registers and follow-ups (one transaction)."""
    settings = load_settings()

    async def run() -> int:
        async with checked_database(settings) as database, database.transaction() as session:
            return await chronic_indicators.rebuild_month(session, SystemClock(), month)

    try:
        written = asyncio.run(run())
    except DomainError as error:
        console.print(f"refused: {error.message}")
        raise typer.Exit(1) from error
    console.print(f"chronic patient-months {month}: {written} rows")


@app.command("indicators")
def indicators(month: Month, program: Annotated[str, typer.Option(help="hypertension or diabetes")] = "hypertension",
               by: Annotated[str, typer.Option(help="area or team")] = "area") -> None:
    """Print the month's indicators per area or team, from the patient-month table."""
    if program not in ("hypertension", "diabetes") or by not in ("area", "team"):
        raise typer.BadParameter("program is hypertension or diabetes; by is area or team")
    settings = load_settings()
    grouping: Literal["area", "team"] = "area" if by == "area" else "team"

    async def run() -> list[IndicatorRow]:
        async with checked_database(settings) as database, database.sessions() as session:
            return await chronic_indicators.indicators(session, month, program, grouping)

    try:
        rows = asyncio.run(run())
    except DomainError as error:
        console.print(f"refused: {error.message}")
        raise typer.Exit(1) from error
    for row in rows:
        console.print(f"{row.area_code or row.team_id}\tmanaged={row.managed}\t规范管理率={row.standard_rate_percent}"
                      f"\t控制率={row.control_rate_percent}\tHEARTS={row.hearts_rate_percent}"
                      f" ({row.hearts_controlled}/{row.hearts_denominator})")
