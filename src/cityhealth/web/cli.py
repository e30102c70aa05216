"""`cityhealth web …`: the demo operator for `make demo`, and its current TOTP code (development only)."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.web.demo import DEMO_USERNAME, DemoOperator, current_totp_code, ensure_demo_operator

app = typer.Typer(help="The web pages' demo operator.", no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    settings = load_settings()

    async def run() -> T:
        async with checked_database(settings) as database, database.transaction() as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]error: {exc.message}[/red]")
        raise typer.Exit(2) from exc


@app.command("create-demo-operator")
def create_demo_operator() -> None:
    """Create (or reset) the demo data-quality operator and print its password and TOTP secret."""
    settings = load_settings()
    operator: DemoOperator = _run(lambda session: ensure_demo_operator(session, SystemClock(), settings,
                                                                       actor=_actor()))
    typer.echo(f"{'created' if operator.created else 'reset'} demo operator (role data_quality_operator)")
    typer.echo(f"  username:    {operator.username}")
    typer.echo(f"  password:    {operator.password}")
    typer.echo(f"  TOTP secret: {operator.totp_secret}")
    typer.echo(f"  otpauth URI: {operator.totp_uri}")
    typer.echo(f"  current code: cityhealth web totp-code {operator.username}")


@app.command("totp-code")
def totp_code(username: str = typer.Argument(DEMO_USERNAME, help="the staff user")) -> None:
    """Print a staff user's current TOTP code (refused unless CITYHEALTH_ENV=development)."""
    settings = load_settings()
    typer.echo(_run(lambda session: current_totp_code(session, SystemClock(), settings, username, actor=_actor())))
