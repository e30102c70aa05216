"""The booking room's periodic work, as tasks on the job queue (queue.py): the hold sweeper, no-show marking
and the notification dispatch.

On PostgreSQL procrastinate defers each tick once, whichever worker gets there first; on SQLite the server
runs them in-process. A server on a simulated clock (tests, the city simulator) runs none: whoever moves the
clock calls `lifecycle.sweep_holds` / `lifecycle.mark_no_shows` itself.
"""

from __future__ import annotations

from cityhealth import queue
from cityhealth.booking import lifecycle, notifications
from cityhealth.registry.protection import cipher_for

HOLD_SWEEP_EVERY_S = 30
NO_SHOW_EVERY_S = 300
DISPATCH_EVERY_S = 60
SMS_GATEWAY = "booking.sms_gateway"


@queue.periodic("booking.sweep_holds", every_s=HOLD_SWEEP_EVERY_S)
async def sweep_holds(runtime: queue.Runtime) -> lifecycle.SweepResult:
    """Release expired holds, offering their slots to the waitlist."""
    return await lifecycle.sweep_holds(runtime.database, runtime.clock)


@queue.periodic("booking.mark_no_shows", every_s=NO_SHOW_EVERY_S)
async def mark_no_shows(runtime: queue.Runtime) -> lifecycle.NoShowResult:
    """Mark the bookings not checked in by their deadline as no-shows and apply the sanction rule."""
    return await lifecycle.mark_no_shows(runtime.database, runtime.clock)


@queue.periodic("booking.dispatch_notifications", every_s=DISPATCH_EVERY_S)
async def dispatch_notifications(runtime: queue.Runtime) -> notifications.DispatchResult:
    """Send the pending patient messages through the process's gateway (development: a file)."""
    gateway = runtime.resource(
        SMS_GATEWAY, lambda: notifications.FileSmsSink(runtime.settings.var_dir / "outbox" / "sms.ndjson")
    )
    cipher = runtime.resource("booking.cipher", lambda: cipher_for(runtime.settings))
    return await notifications.dispatch(runtime.database, runtime.clock, cipher, gateway)
