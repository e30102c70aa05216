"""`cityhealth simulate`: a scenario's month, driven through the platform with a simulated clock."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cityhealth.config import load_settings
from cityhealth.errors import DomainError
from cityhealth.simulation.driver import AppFactory, announce
from cityhealth.simulation.driver import simulate as run_simulation
from cityhealth.simulation.scenario import bundled_scenario, load_scenario

console = Console(stderr=True, soft_wrap=True)  # the summary stays one line in a log file


def command(app_factory: AppFactory) -> Callable[..., None]:
    """The `simulate` command for the platform that `app_factory` builds (given by the root CLI)."""

    def simulate(
        scenario: str = typer.Option("nanjing-2022-06", help="a scenario file, or the name of a bundled one"),
        scale: str = typer.Option("0.01", help="0 < scale <= 1; 1 is the real month"),
        seed: int = typer.Option(1, help="the same seed gives the same month"),
        announce_only: bool = typer.Option(
            False, "--announce-only",
            help="only record the month as being loaded (0 %), so that a server started before the "
                 "simulation shows its progress and holds back its bulletin from the start"),
    ) -> None:
        """Generate a scenario's month and drive it through the platform (registry, uploads, bookings, calls)."""
        run(app_factory, scenario, scale, seed, announce_only=announce_only)

    return simulate


def run(app_factory: AppFactory, scenario: str, scale: str, seed: int, *, announce_only: bool = False) -> None:
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
        f"and {result.lab_messages} lab messages sent in {result.elapsed_s:.1f} s "
        f"({result.records_per_s:,.0f} records/s while uploading)[/green]")
