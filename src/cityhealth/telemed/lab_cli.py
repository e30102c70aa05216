"""`cityhealth telemed mllp`: the MLLP listener that lab systems send ORU^R01 results and OML^O21 specimens to."""

from __future__ import annotations

import asyncio
import signal

import typer
from rich.console import Console

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.registry import service as registry
from cityhealth.telemed.mllp import LabListener

app = typer.Typer(help="Remote diagnosis networks: the lab listener (HL7 v2 over MLLP).", no_args_is_help=True)
console = Console()


@app.command("mllp")
def mllp(
    host: str = typer.Option("127.0.0.1", help="the address to listen on (loopback unless told otherwise)"),
    port: int = typer.Option(2575, min=0, max=65535, help="the TCP port (2575: HL7's registered port)"),
    max_batch: int = typer.Option(256, min=1, max=4096, help="at most this many messages decided in one transaction"),
) -> None:
    """Receive lab results and specimen steps over MLLP until interrupted (SIGINT or SIGTERM)."""
    settings = load_settings()

    async def run() -> None:
        async with checked_database(settings) as database:
            listener = LabListener(database, SystemClock(), registry.cipher_for(settings), max_batch=max_batch)
            bound = await listener.start(host, port)
            console.print(f"MLLP listener on {bound[0]}:{bound[1]}")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            await listener.close()
            stats = listener.stats
            console.print(f"stopped: {stats.received} received, {stats.accepted} accepted, {stats.refused} refused")

    try:  # uvloop (with uvicorn[standard]) where it installs: the listener's loop costs less CPU per message
        import uvloop
    except ImportError:  # pragma: no cover - platforms without it
        asyncio.run(run())
    else:
        uvloop.run(run())
