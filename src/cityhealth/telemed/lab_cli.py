"""`cityhealth telemed mllp`: the MLLP listener that lab systems send ORU^R01 results and OML^O21 specimens to.

The lab listener run in one process, or in several that share its port (SO_REUSEPORT) so every core works.

One process decides its connections' messages in its own group commit. With `processes` > 1 the command's
process reserves the port (bound with SO_REUSEPORT, never listening, so the kernel hands it no connection),
starts that many listener processes bound to the same port with SO_REUSEPORT (the kernel spreads the
connections over them), says it listens once every one of them does, and on SIGTERM or SIGINT stops them and
sums what they received. They are safe together: an accepted message is unique on its sender and control
id in the database (a race lost on that index is decided again alone and found a repeat), and specimens
are locked in one order by every batch.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console

from cityhealth import heap
from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.registry import service as registry
from cityhealth.telemed.mllp import LabListener, ListenerStats

app = typer.Typer(help="Remote diagnosis networks: the lab listener (HL7 v2 over MLLP).", no_args_is_help=True)
console = Console()


# Paced at 2,000 messages/s over 24 lab systems on two cores, batches started as soon as the last ended held four
# or five messages, and a batch's fixed cost (its transaction's six round trips) was most of a message's. Spaced
# 8 ms apart they hold about ten, and the CPU a message falls by a third (about 870 to 550 µs, listener, database
# and load generator), for a few milliseconds' wait (docs/decisions/telemed-lab.md, session 24). At 3 ms nothing
# changes (a batch already takes that long); 6 ms costs a tenth more CPU than 8 for the same latency.
BATCH_INTERVAL_MS = 8.0


@dataclass(frozen=True)
class Batching:
    """How a listener process groups its messages into transactions (mllp.LabListener)."""

    max_batch: int = 256
    interval_s: float = BATCH_INTERVAL_MS / 1000


@app.command("mllp")
def mllp(
    host: str = typer.Option("127.0.0.1", help="the address to listen on (loopback unless told otherwise)"),
    port: int = typer.Option(2575, min=0, max=65535, help="the TCP port (2575: HL7's registered port)"),
    max_batch: int = typer.Option(
        Batching.max_batch, min=1, max=4096, help="at most this many messages decided in one transaction"
    ),
    batch_interval_ms: float = typer.Option(
        BATCH_INTERVAL_MS, min=0.0, max=1000.0,
        help="a process's next transaction starts no sooner than this after its last one started (0: at once)",
    ),
    processes: int = typer.Option(
        1, min=1, max=64, help="listener processes sharing the port (SO_REUSEPORT): one per core uses them all"
    ),
) -> None:
    """Receive lab results and specimen steps over MLLP until interrupted (SIGINT or SIGTERM)."""
    batching = Batching(max_batch, batch_interval_ms / 1000)
    if processes > 1:
        stats = run_processes(host, port, batching, processes, console.print)
    else:
        stats = run(host, port, batching, reuse_port=False,
                    ready=lambda bound_host, bound_port: console.print(f"MLLP listener on {bound_host}:{bound_port}"))
    console.print(f"stopped: {stats.received} received, {stats.accepted} accepted, {stats.refused} refused")


Say = Callable[[str], None]


async def _serve(
    host: str, port: int, batching: Batching, reuse_port: bool, ready: Callable[[str, int], None]
) -> ListenerStats:
    settings = load_settings()
    async with checked_database(settings) as database:
        listener = LabListener(database, SystemClock(), registry.cipher_for(settings), max_batch=batching.max_batch,
                               batch_interval_s=batching.interval_s)
        bound = await listener.start(host, port, reuse_port=reuse_port)
        heap.freeze_startup()
        ready(*bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await listener.close()
        return listener.stats


def run(
    host: str, port: int, batching: Batching, *, reuse_port: bool, ready: Callable[[str, int], None]
) -> ListenerStats:
    """Serve until SIGINT or SIGTERM, on uvloop where it installs (less CPU per message); what was received."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without it
        return asyncio.run(_serve(host, port, batching, reuse_port, ready))
    return uvloop.run(_serve(host, port, batching, reuse_port, ready))


def _child(host: str, port: int, batching: Batching, pipe: Any) -> None:
    """A listener process: says "ready" once it listens, and sends its figures when it stops."""
    stats = run(host, port, batching, reuse_port=True, ready=lambda *_: pipe.send("ready"))
    pipe.send((stats.received, stats.accepted, stats.refused))
    pipe.close()


def reserve(host: str, port: int) -> socket.socket:
    """The port the processes will share, bound with SO_REUSEPORT and not listening (0: a free one)."""
    reserved = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    return reserved


def run_processes(host: str, port: int, batching: Batching, processes: int, say: Say) -> ListenerStats:
    """`processes` listener processes on one port until SIGINT or SIGTERM; their figures summed."""
    reserved = reserve(host, port)
    bound_port = int(reserved.getsockname()[1])
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop or pool inherited
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    children: list[tuple[Any, Any]] = []
    try:
        for _ in range(processes):
            ours, theirs = context.Pipe()
            child = context.Process(target=_child, args=(host, bound_port, batching, theirs), daemon=False)
            child.start()
            theirs.close()
            children.append((child, ours))
        for child, pipe in children:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError(f"a listener process (pid {child.pid}) did not start listening")
        say(f"MLLP listener on {host}:{bound_port} ({processes} processes)")
        while not stopping and all(child.is_alive() for child, _ in children):
            multiprocessing.connection.wait([child.sentinel for child, _ in children], timeout=0.5)
        if not stopping:
            say("a listener process ended: stopping the others")
        return _stopped(children)
    finally:
        for child, _ in children:
            if child.is_alive():
                child.terminate()
            child.join(30)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reserved.close()


def _stopped(children: list[tuple[Any, Any]]) -> ListenerStats:
    total = ListenerStats()
    for child, _ in children:
        if child.is_alive():
            child.terminate()  # SIGTERM: the process lets its batches finish
    for child, pipe in children:
        child.join(60)
        if pipe.poll(0):
            received, accepted, refused = pipe.recv()
            total.received += received
            total.accepted += accepted
            total.refused += refused
    return total
