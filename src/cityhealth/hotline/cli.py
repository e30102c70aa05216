"""`cityhealth hotline …`: the city lines, the crisis escalation run by hand, the month's call and work-order
figures, the month's statistics as the bulletin reports them, the holiday calendar."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cityhealth.clock import SystemClock, business_midnight
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.hotline import crisis, holidays, service, statistics, work_order_statistics
from cityhealth.hotline.schemas import CallStatistics, CityLineIn, CityLineRead, HotlineMonth
from cityhealth.hotline.work_order_schemas import HolidayYearIn, HolidayYearRead

app = typer.Typer(help="The 12320 hotline: city lines, crisis escalation, call and work-order figures, holidays.",
                  no_args_is_help=True)
console = Console()


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


@app.command("call-figures")
def call_figures(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """The month's calls by city and by category, with the peak day and hour, as JSON."""
    settings = load_settings()

    async def run() -> CallStatistics:
        async with checked_database(settings) as database, database.transaction() as session:
            return await statistics.call_statistics(session, month)

    try:
        figures = asyncio.run(run())
    except DomainError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    console.print_json(figures.model_dump_json())


@app.command("work-order-figures")
def work_order_figures(month: str = typer.Option(..., help="YYYY-MM")) -> None:
    """The month's work orders by source, on-time closure and satisfaction, as JSON."""
    settings = load_settings()
    try:
        first, last = statistics.month_bounds(month)
    except DomainError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    start, end = business_midnight(first), business_midnight(last + timedelta(days=1))

    async def run() -> work_order_statistics.WorkOrderFigures:
        async with checked_database(settings) as database, database.transaction() as session:
            return await work_order_statistics.work_order_figures(session, start, end)

    # Rates as strings ("75.00"): the exact decimals the bulletin prints.
    console.print_json(json.dumps({"month": month, **dataclasses.asdict(asyncio.run(run()))}, default=str))


@app.command("holidays")
def show_holidays(year: int = typer.Argument(..., help="the year")) -> None:
    """A year's public holidays and adjusted working weekends, and where they come from, as JSON."""
    settings = load_settings()

    async def run() -> HolidayYearRead:
        async with checked_database(settings) as database, database.transaction() as session:
            return await holidays.get_year(session, year)

    try:
        console.print_json(asyncio.run(run()).model_dump_json())
    except DomainError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error


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
    settings = load_settings()

    async def run() -> HotlineMonth:
        async with checked_database(settings) as database, database.transaction() as session:
            return await statistics.monthly_statistics(session, month, region)

    try:
        figures = asyncio.run(run())
    except DomainError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    console.print_json(figures.model_dump_json())
