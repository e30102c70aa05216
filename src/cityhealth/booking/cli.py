"""`cityhealth booking …`: the scheduled jobs (hold sweep, no-show marking, notification dispatch)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from cityhealth.booking import lifecycle, notifications
from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.registry.protection import cipher_for

app = typer.Typer(help="Appointment booking: scheduled jobs.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("sweep")
def sweep() -> None:
    """Release expired holds (offering their slots to the waitlist) and purge old idempotency keys."""
    settings = load_settings()

    async def run() -> lifecycle.SweepResult:
        async with checked_database(settings) as database:
            return await lifecycle.sweep_holds(database, SystemClock())

    result = asyncio.run(run())
    console.print(f"expired holds: {result.expired_holds}, waitlist offers: {result.offers_made}, "
                  f"idempotency keys purged: {result.idempotency_keys_purged}")


@app.command("mark-no-shows")
def mark_no_shows() -> None:
    """Mark bookings not checked in by their pick-up deadline as no-shows and apply the sanction rule."""
    settings = load_settings()

    async def run() -> lifecycle.NoShowResult:
        async with checked_database(settings) as database:
            return await lifecycle.mark_no_shows(database, SystemClock())

    result = asyncio.run(run())
    console.print(f"no-shows: {result.no_shows}, residents banned: {result.residents_banned}")


@app.command("dispatch-notifications")
def dispatch_notifications(limit: int = typer.Option(500, min=1, help="messages per run")) -> None:
    """Send pending patient messages (development: to var/outbox/sms.ndjson)."""
    settings = load_settings()
    gateway = notifications.FileSmsSink(settings.var_dir / "outbox" / "sms.ndjson")

    async def run() -> notifications.DispatchResult:
        async with checked_database(settings) as database:
            return await notifications.dispatch(database, SystemClock(), cipher_for(settings), gateway, limit=limit)

    result = asyncio.run(run())
    console.print(f"sent: {result.sent}, failed: {result.failed}, without phone: {result.no_phone}, "
                  f"lapsed (not sent): {result.lapsed}")
