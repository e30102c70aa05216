"""`cityhealth telemed mllp`: the MLLP listener that lab systems send ORU^R01 results and OML^O21 specimens to."""

from __future__ import annotations

import typer
from rich.console import Console

from cityhealth.telemed.lab_processes import run, run_processes

app = typer.Typer(help="Remote diagnosis networks: the lab listener (HL7 v2 over MLLP).", no_args_is_help=True)
console = Console()


@app.command("mllp")
def mllp(
    host: str = typer.Option("127.0.0.1", help="the address to listen on (loopback unless told otherwise)"),
    port: int = typer.Option(2575, min=0, max=65535, help="the TCP port (2575: HL7's registered port)"),
    max_batch: int = typer.Option(256, min=1, max=4096, help="at most this many messages decided in one transaction"),
    processes: int = typer.Option(
        1, min=1, max=64, help="listener processes sharing the port (SO_REUSEPORT): one per core uses them all"
    ),
) -> None:
    """Receive lab results and specimen steps over MLLP until interrupted (SIGINT or SIGTERM)."""
    if processes > 1:
        stats = run_processes(host, port, max_batch, processes, console.print)
    else:
        stats = run(host, port, max_batch, reuse_port=False,
                    ready=lambda bound_host, bound_port: console.print(f"MLLP listener on {bound_host}:{bound_port}"))
    console.print(f"stopped: {stats.received} received, {stats.accepted} accepted, {stats.refused} refused")
