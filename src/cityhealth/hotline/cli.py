"""`cityhealth hotline …`: the city lines, the crisis escalation run by hand, the month's call figures, the
month's statistics as the bulletin reports them (the work orders' with them), the holiday calendar."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.hotline import crisis, holidays, service, statistics
from cityhealth.hotline.schemas import CityLineIn, CityLineRead
from cityhealth.hotline.work_order_schemas import HolidayYearIn, HolidayYearRead

app = typer.Typer(help="The 12320 hotline: city lines, crisis escalation, call and work-order figures, holidays.",
                  no_args_is_help=True)
console = Console()
T = TypeVar("T")


@app.command("set-line")
def set_line(line: str = typer.Argument(..., help="the line's name as the telephony system reports it"),
             city: str = typer.Option(..., help="the city's 6-digit area code"),
             name: str = typer.Option(..., help="the city's name"),
             active: bool = typer.Option(True, help="--no-active: reports naming the line are refused")) -> None:
    """Register a city line, or change it."""
    settings = load_settings()

    async def run() -> CityLineRead:
        async with checked_database(settings) as database, database.transaction() as session:
            return await service.put_city_line(session, SystemClock(), None, line, CityLineIn(
                city_code=city, city_name=name, active=active), operator=f"cli:{getpass.getuser()}")

    try:
        saved = asyncio.run(run())
    except (DomainError, ValueError) as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"{saved.line}: {saved.city_code} {saved.city_name} ({'active' if saved.active else 'inactive'})")


@app.command("lines")
def lines() -> None:
    """The city lines."""
    settings = load_settings()

    async def run() -> list[CityLineRead]:
        async with checked_database(settings) as database, database.transaction() as session:
            return await service.list_city_lines(session)

    table = Table("line", "city", "name", "active")
    for line in asyncio.run(run()):
        table.add_row(line.line, line.city_code, line.city_name, "yes" if line.active else "no")
    console.print(table)


@app.command("escalate")
def escalate() -> None:
    """Escalate the crisis follow-ups past their deadline now (the worker does it every minute)."""
    settings = load_settings()

    async def run() -> list[int]:
        async with checked_database(settings) as database, database.transaction() as session:
            return await crisis.escalate_overdue(session, SystemClock())

    console.print(f"escalated: {len(asyncio.run(run()))}")


def _read(read: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`read` in a transaction on the configured database; a refusal printed, and exit code 1."""
    settings = load_settings()

    async def run() -> T:
        async with checked_database(settings) as database, database.transaction() as session:
            return await read(session)

    try:
        return asyncio.run(run())
    except DomainError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error


@app.command("call-figures")
def call_figures(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """The month's calls by city and by category, with the peak day and hour, as JSON."""
    console.print_json(_read(lambda session: statistics.call_statistics(session, month)).model_dump_json())


@app.command("holidays")
def show_holidays(year: int = typer.Argument(..., help="the year")) -> None:
    """A year's public holidays and adjusted working weekends, and where they come from, as JSON."""
    console.print_json(_read(lambda session: holidays.get_year(session, year)).model_dump_json())


@app.command("set-holidays")
def set_holidays(year: int = typer.Argument(..., help="the year"),
                 file: str = typer.Option(..., help='JSON: {"holidays": [{"day", "name"}], "workdays": [...]}'),
                 ) -> None:
    """Set a year's public holidays and adjusted working weekends (replacing the shipped ones)."""
    settings = load_settings()

    async def run() -> HolidayYearRead:
        data = HolidayYearIn.model_validate_json(Path(file).read_text("utf-8"))
        async with checked_database(settings) as database, database.transaction() as session:
            return await holidays.set_year(session, SystemClock(), None, year, data,
                                           operator=f"cli:{getpass.getuser()}")

    try:
        saved = asyncio.run(run())
    except (DomainError, ValueError, OSError) as error:
        where = f"{error.field}: " if isinstance(error, DomainError) and error.field else ""
        console.print(f"[red]refused:[/red] {where}{error}")
        raise typer.Exit(1) from error
    console.print(f"{saved.year}: {len(saved.holidays)} holidays, {len(saved.workdays)} adjusted working days")


@app.command("month-figures")
def month_figures(month: str = typer.Argument(..., help="YYYY-MM"),
                  region: str = typer.Option(..., help="the region city's 6-digit area code")) -> None:
    """The month's statistics as the bulletin reports them (calls by city, the region city's calls by category,
    the self-service answer rate, the peaks, the work orders by source, their on-time closure and satisfaction),
    as JSON."""
    console.print_json(_read(lambda session: statistics.monthly_statistics(session, month, region)).model_dump_json())
