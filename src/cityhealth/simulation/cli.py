"""`cityhealth simulate`: a scenario's month, driven through the platform with a simulated clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cityhealth.config import Settings, load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.simulation.demo import DemoAccounts, DemoStaff, demo_accounts
from cityhealth.simulation.driver import AppFactory, announce
from cityhealth.simulation.driver import simulate as run_simulation
from cityhealth.simulation.scenario import Scenario, bundled_scenario, load_scenario

console = Console(stderr=True, soft_wrap=True)  # the summary stays one line in a log file


def command(app_factory: AppFactory, demo_staff: DemoStaff | None = None) -> Callable[..., None]:
    """The `simulate` command for the platform that `app_factory` builds (given by the root CLI, with the web
    room's demo staff function for `--demo-accounts`)."""

    def simulate(
        scenario: str = typer.Option("nanjing-2022-06", help="a scenario file, or the name of a bundled one"),
        scale: str = typer.Option("0.01", help="0 < scale <= 1; 1 is the real month"),
        seed: int = typer.Option(1, help="the same seed gives the same month"),
        announce_only: bool = typer.Option(
            False, "--announce-only",
            help="only record the month as being loaded (0 %), so that a server started before the "
                 "simulation shows its progress and holds back its bulletin from the start"),
        demo_accounts: bool = typer.Option(
            False, "--demo-accounts",
            help="after the month is simulated: print its demo resident and create (or reset) the demo family "
                 "doctor of the resident's centre (development only)"),
    ) -> None:
        """Generate a scenario's month and drive it through the platform (registry, uploads, bookings, calls,
        residents, family doctors and chronic disease follow-ups)."""
        run(app_factory, scenario, scale, seed, announce_only=announce_only,
            demo_staff=demo_staff if demo_accounts else None)

    return simulate


def run(app_factory: AppFactory, scenario: str, scale: str, seed: int, *, announce_only: bool = False,
        demo_staff: DemoStaff | None = None) -> None:
    try:
        factor = Decimal(scale)
    except InvalidOperation:
        raise typer.BadParameter(f"scale {scale!r} is not a number") from None
    settings = load_settings()
    try:
        path = Path(scenario) if Path(scenario).exists() else bundled_scenario(scenario)
        loaded = load_scenario(path)
        if announce_only:
            announce(settings, loaded, factor, seed)
            console.print(f"{loaded.month} recorded as being loaded")
            return
        if demo_staff is not None:
            _print_demo_accounts(settings, loaded, factor, seed, demo_staff)
            return
    except DomainError as exc:
        console.print(f"[red]simulation failed: {exc.message}[/red]")
        raise typer.Exit(1) from exc
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"simulating {loaded.month} at scale {factor}", total=None)

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase == "month":
                progress.update(task, completed=done, total=total)

        try:
            result = run_simulation(app_factory, settings, loaded, factor, seed, on_progress)
        except DomainError as exc:
            console.print(f"[red]simulation failed: {exc.message}[/red]")
            raise typer.Exit(1) from exc
    console.print(
        f"[green]{loaded.month} at scale {factor}: {result.uploaded} records uploaded, "
        f"{result.bookings} bookings made, {result.calls} hotline calls reported, {result.telemed_cases} ECG cases "
        f"and {result.lab_messages} lab messages sent, {result.residents} residents registered, {result.contracts} "
        f"family doctor contracts signed and {result.followups} chronic follow-ups recorded "
        f"in {result.elapsed_s:.1f} s "
        f"({result.records_per_s:,.0f} records/s while uploading)[/green]")


def _print_demo_accounts(settings: Settings, scenario: Scenario, scale: Decimal, seed: int,
                         demo_staff: DemoStaff) -> None:
    async def create() -> DemoAccounts:
        async with checked_database(settings) as database, database.transaction() as session:
            return await demo_accounts(session, settings, scenario, scale, seed, demo_staff)

    try:
        accounts = asyncio.run(create())
    except DomainError as exc:
        console.print(f"[red]no demo accounts: {exc.message}[/red]")
        raise typer.Exit(1) from exc
    resident, doctor = accounts.resident, accounts.doctor
    typer.echo(f"Demo resident (simulated; signed with a family doctor team of {accounts.centre}):")
    typer.echo(f"  name:      {resident.name}")
    typer.echo(f"  phone:     {resident.phone}  (the resident app: register once at /app/register with this "
               "phone, the name and the ID number, then sign in at /app/login; each one-time SMS code is printed by "
               "`cityhealth sms outbox`, the development SMS sink)")
    typer.echo(f"  ID number: {resident.id_number}")
    typer.echo(f"Demo family doctor at {accounts.centre} (staff sign-in: /login):")
    typer.echo(f"  username:    {doctor.username}")
    typer.echo(f"  password:    {doctor.password}")
    typer.echo(f"  TOTP secret: {doctor.totp_secret}")
    typer.echo(f"  current code: cityhealth web totp-code {doctor.username}")
