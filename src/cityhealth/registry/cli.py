"""`cityhealth registry …`: load reference data, import records from files, list organizations."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import ValidationFailed
from cityhealth.registry import imports, service
from cityhealth.registry.imports import ImportReport, Row
from cityhealth.registry.protection import cipher_for
from cityhealth.registry.schemas import MAX_PAGE_SIZE, OrganizationRead

app = typer.Typer(help="The registry: areas, organizations, client apps, residents.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


class ImportKind(StrEnum):
    AREAS = "areas"
    ORGANIZATIONS = "organizations"
    DEPARTMENTS = "departments"
    PRACTITIONERS = "practitioners"
    CLIENT_APPS = "client-apps"
    RESIDENTS = "residents"


class FileFormatError(Exception):
    """The file cannot be read as CSV, a JSON array or NDJSON; the message says where."""


def read_rows(path: Path) -> list[Row]:
    """(row number, record) pairs: CSV with a header (row = spreadsheet line), a JSON array, or NDJSON."""
    try:
        text = path.read_text("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey="(unnamed column)")
        try:
            return [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise FileFormatError(f"{path} line {reader.line_num}: {exc}") from None
    if suffix in (".ndjson", ".jsonl") or (suffix == ".json" and not text.lstrip().startswith("[")):
        rows: list[Row] = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise FileFormatError(f"{path} line {number}: not JSON ({exc.msg})") from None
        return rows
    if suffix == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{path} line {exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(records, list):
            raise FileFormatError(f"{path}: a JSON file holds an array of records")
        return list(enumerate(records, 1))
    raise FileFormatError(f"{path}: unknown format {suffix or '(none)'}; use .csv, .json, .ndjson or .jsonl")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


def _print_report(report: ImportReport) -> None:
    typer.echo(f"{report.kind}: {report.rows} rows — {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged")


def _print_failure(error: ValidationFailed) -> None:
    named_rule = f" [{error.rule}]" if error.rule and not error.errors else ""
    typer.echo(f"error: {error.message}{named_rule}", err=True)
    for item in error.errors:
        where = f"row {item['row']}" if "row" in item else "file"
        value = "" if item.get("value") is None else f" (value {item['value']})"
        typer.echo(f"  {where}: {item.get('field')} [{item.get('rule')}]{value}: {item.get('message')}", err=True)
    by_rule = Counter((item.get("field"), item.get("rule")) for item in error.errors)
    if len(by_rule) > 1:
        typer.echo("summary by field and rule:", err=True)
        for (field, rule), count in by_rule.most_common():
            typer.echo(f"  {count:>6}  {field} [{rule}]", err=True)


@app.command("load-reference")
def load_reference_command(
    name: Annotated[str, typer.Argument(help="the reference data set (shipped with the package)")] = "nanjing",
) -> None:
    """Load the areas, institutions and client apps of a reference data set; running it again changes nothing."""
    settings = load_settings()

    async def run() -> dict[str, ImportReport]:
        async with checked_database(settings) as database, database.transaction() as session:
            return await imports.load_reference(session, SystemClock(), name)

    try:
        reports = asyncio.run(run())
    except ValidationFailed as exc:
        _print_failure(exc)
        raise typer.Exit(1) from None
    for report in reports.values():
        _print_report(report)


@app.command("import")
def import_command(
    kind: Annotated[ImportKind, typer.Argument(help="what the file holds")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with a header row, a JSON array, or NDJSON")],
) -> None:
    """Import records from FILE in one transaction: any invalid row and nothing is written (exit code 1)."""
    settings = load_settings()
    try:
        rows = read_rows(file)
    except FileFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    cipher = cipher_for(settings) if kind is ImportKind.RESIDENTS else None

    async def run(advance: Callable[[int], None]) -> ImportReport:
        async with checked_database(settings) as database, database.transaction() as session:
            return await imports.import_records(session, SystemClock(), kind.value, rows, cipher=cipher,
                                                actor=_actor(), progress=advance)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress, imports.heap_frozen():
        task = progress.add_task(f"importing {kind.value}", total=len(rows))
        try:
            report = asyncio.run(run(lambda n: progress.advance(task, n)))
        except ValidationFailed as exc:
            progress.stop()
            _print_failure(exc)
            raise typer.Exit(1) from None
    _print_report(report)


@app.command("list-organizations")
def list_organizations_command(
    kind: Annotated[str | None, typer.Option(
        help="hospital, community_health_centre, district_platform, external")] = None,
    area: Annotated[str | None, typer.Option(help="area code, e.g. 320106")] = None,
    name: Annotated[str | None, typer.Option(help="part of the name")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="active today, or not")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE,
) -> None:
    """Show organizations as a table."""
    settings = load_settings()

    async def run() -> tuple[list[OrganizationRead], int]:
        async with checked_database(settings) as database, database.transaction() as session:
            page = await service.list_organizations(session, SystemClock(), kind=kind, area_code=area, name=name,
                                                    active=active, limit=limit)
            return page.items, page.total

    items, total = asyncio.run(run())
    table = Table(title=f"organizations ({len(items)} of {total})")
    for column in ("id", "code", "name", "kind", "area", "level", "active from", "active to"):
        table.add_column(column)
    for org in items:
        values: list[Any] = [org.id, org.code, org.name, org.kind, org.area_code, org.level, org.active_from,
                             org.active_to]
        table.add_row(*("" if v is None else str(v) for v in values))
    console.print(table)
