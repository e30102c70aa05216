"""The root `cityhealth` command; mounts each domain's Typer app."""

from __future__ import annotations

import sys

import typer

from cityhealth import __version__
from cityhealth.app import create_app
from cityhealth.booking import cli as booking_cli
from cityhealth.collection import cli as collection_cli
from cityhealth.config import load_settings
from cityhealth.db import cli as db_cli
from cityhealth.errors import ConfigurationError
from cityhealth.observability import configure_logging
from cityhealth.registry import cli as registry_cli
from cityhealth.reporting import cli as reporting_cli
from cityhealth.security import cli as security_cli
from cityhealth.simulation import cli as simulation_cli
from cityhealth.web import cli as web_cli

app = typer.Typer(
    name="cityhealth",
    help="cityhealth: the city health information platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
app.add_typer(db_cli.app, name="db")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(security_cli.audit_app, name="audit")
app.add_typer(security_cli.keys_app, name="keys")
app.add_typer(security_cli.users_app, name="users")
app.add_typer(security_cli.clients_app, name="clients")
app.add_typer(booking_cli.app, name="booking")
app.add_typer(collection_cli.app, name="collection")
app.command("bulletin")(reporting_cli.bulletin)
app.command("simulate")(simulation_cli.command(create_app))
app.add_typer(web_cli.app, name="web")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cityhealth {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """City health information platform."""


@app.command()
def serve(
    host: str | None = typer.Option(None, help="bind address (default CITYHEALTH_HOST)"),
    port: int | None = typer.Option(None, help="port (default CITYHEALTH_PORT)"),
    workers: int | None = typer.Option(None, help="worker processes (default CITYHEALTH_WORKERS)"),
) -> None:
    """Run the HTTP server (refuses to start on a database whose schema is behind the code)."""
    import asyncio

    import uvicorn

    settings = load_settings()

    async def check() -> None:
        async with db_cli.checked_database(settings):
            pass

    asyncio.run(check())
    configure_logging(settings.log_level)
    uvicorn.run(
        "cityhealth.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=settings.behind_proxy,
    )


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
