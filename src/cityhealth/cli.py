"""The root `cityhealth` command; mounts each domain's Typer app.

A command imports only its own room: `main()` mounts just the group or command named on the command line
(every one for `--help` or an unknown name), so `cityhealth bulletin` does not pay for importing the web
server, the simulator and every other room first: it loads the reporting room, and the domains' services
and the database only when it reads the database (`tests/test_cli.py` holds it to that). `build()` with no
name is the whole tree (tests use it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

import typer

import cityhealth
from cityhealth.config import load_settings
from cityhealth.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import FastAPI

# name -> (module, attribute): a Typer group of a room.
GROUPS: dict[str, tuple[str, str]] = {
    "db": ("cityhealth.db.cli", "app"),
    "registry": ("cityhealth.registry.cli", "app"),
    "audit": ("cityhealth.security.cli", "audit_app"),
    "keys": ("cityhealth.security.cli", "keys_app"),
    "users": ("cityhealth.security.cli", "users_app"),
    "clients": ("cityhealth.security.cli", "clients_app"),
    "sms": ("cityhealth.security.cli", "sms_app"),
    "booking": ("cityhealth.booking.cli", "app"),
    "hotline": ("cityhealth.hotline.cli", "app"),
    "collection": ("cityhealth.collection.cli", "app"),
    "web": ("cityhealth.web.cli", "app"),
    "knowledge": ("cityhealth.hotline.knowledge_cli", "app"),
    "telemed": ("cityhealth.telemed.cli", "app"),
    "family": ("cityhealth.records.family_cli", "app"),
    "chronic": ("cityhealth.records.chronic_cli", "app"),
    "bulletin-profile": ("cityhealth.reporting.profile_cli", "app"),
    "bulletin-issue": ("cityhealth.reporting.issue_cli", "app"),
    "records": ("cityhealth.records.cli", "app"),
}


def _bulletin() -> Callable[..., Any]:
    from cityhealth.reporting import cli as reporting_cli

    return reporting_cli.bulletin


def _simulate() -> Callable[..., Any]:
    from cityhealth.app import create_app
    from cityhealth.simulation import cli as simulation_cli
    from cityhealth.web.demo import ensure_demo_staff

    return simulation_cli.command(create_app, ensure_demo_staff)


# name -> the command's function, imported when mounted.
COMMANDS: dict[str, Callable[[], Callable[..., Any]]] = {"bulletin": _bulletin, "simulate": _simulate}
# Commands that write no rows, so need not load every room's tables first (the bulletin only reads).
READ_ONLY = frozenset({"bulletin"})


def build(only: str | None = None) -> typer.Typer:
    """The command tree: every group and command, or only `only` (and the root's own commands)."""
    root_app = typer.Typer(
        name="cityhealth",
        help="cityhealth: the city health information platform.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # locals may hold personal data
    )
    root_app.callback()(root)
    root_app.command()(serve)
    root_app.command()(worker)
    if only != "" and only not in READ_ONLY:
        # Every room's tables on the metadata: a room's command writes rows whose foreign keys name another
        # room's tables (a staff user's organization), which SQLAlchemy resolves only if that room is loaded.
        import_module("cityhealth.models")
    for name, (module, attribute) in GROUPS.items():
        if only is None or only == name:
            root_app.add_typer(getattr(import_module(module), attribute), name=name)
    for name, load in COMMANDS.items():
        if only is None or only == name:
            root_app.command(name)(load())
    return root_app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cityhealth {cityhealth.__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """City health information platform."""


def serve(
    host: str | None = typer.Option(None, help="bind address (default CITYHEALTH_HOST)"),
    port: int | None = typer.Option(None, help="port (default CITYHEALTH_PORT)"),
    workers: int | None = typer.Option(None, help="worker processes (default CITYHEALTH_WORKERS)"),
) -> None:
    """Run the HTTP server (refuses to start on a database whose schema is behind the code)."""
    import asyncio

    import uvicorn

    from cityhealth.db import cli as db_cli
    from cityhealth.observability import configure_logging

    settings = load_settings()

    async def check() -> None:
        async with db_cli.checked_database(settings):
            pass

    asyncio.run(check())
    configure_logging(settings.log_level)
    uvicorn.run(
        "cityhealth.cli:served_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=settings.behind_proxy,
    )


def served_app() -> FastAPI:
    """The app `serve` runs, built in each server process with its logging: a worker process that uvicorn
    spawns (`--workers 2` and up) inherits none of the parent's configuration, so without this it logs nothing."""
    from cityhealth import heap
    from cityhealth.app import create_app
    from cityhealth.observability import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    heap.freeze_startup()
    return app


def worker(
    concurrency: int = typer.Option(1, min=1, max=64, help="tasks run at once by this process"),
    periodic: bool = typer.Option(
        True, help="also run the periodic work on the system clock (--no-periodic: only the queued tasks, for a "
                   "simulated month, whose driver runs that work on its own clock)"),
) -> None:
    """Run background tasks from the job queue (PostgreSQL): bulk jobs and the periodic work.

    Any number of workers, on any number of machines, share one database; a worker killed mid-task has its
    task taken up again by another (docs/decisions/job-queue.md). Stops on SIGINT / SIGTERM.
    """
    import asyncio

    from cityhealth import queue, worker
    from cityhealth.clock import SystemClock
    from cityhealth.db import cli as db_cli
    from cityhealth.observability import configure_logging

    settings = load_settings()
    if settings.effective_database_url.startswith("sqlite"):
        raise ConfigurationError(
            "`cityhealth worker` needs PostgreSQL (CITYHEALTH_DATABASE_URL): on SQLite the server runs the tasks"
        )
    configure_logging(settings.log_level)
    import_module("cityhealth.app")  # its TASK_MODULES register every room's tasks and periodic work

    async def run() -> None:
        async with db_cli.checked_database(settings) as database:
            runtime = queue.Runtime(settings, database, SystemClock())
            try:
                await worker.run_worker(runtime, concurrency=concurrency, run_periodic=periodic)
            finally:
                await runtime.close()

    asyncio.run(run())


def _named(arguments: list[str]) -> str | None:
    """What to mount: the group or command the arguments name, "" for the root's own options
    (`--version`), None for everything (no arguments, `--help`, or a name to be refused with the list)."""
    first = next((argument for argument in arguments if not argument.startswith("-")), None)
    if first is None:
        return None if not arguments or "--help" in arguments else ""
    return first if first in GROUPS or first in COMMANDS or first in ("serve", "worker") else None


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole tree, built on first use (`from cityhealth.cli import app`)
        return build()
    raise AttributeError(name)


def main() -> None:
    try:
        build(_named(sys.argv[1:]))()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":  # `python -X importtime -m cityhealth.cli bulletin …` profiles a command's start-up
    main()
