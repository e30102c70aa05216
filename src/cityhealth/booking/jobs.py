"""The booking room's periodic work, as tasks on the job queue (queue.py): the hold sweeper, no-show marking,
the notification dispatch (the safety net of the sending task), waitlist expiry and the day-before reminders.

On PostgreSQL procrastinate defers each tick once, whichever worker gets there first; on SQLite the server
runs them in-process. A server on a simulated clock (tests, the city simulator) runs none: whoever moves the
clock calls `lifecycle.sweep_holds` / `lifecycle.mark_no_shows` itself.
"""

from __future__ import annotations

from cityhealth import queue
from cityhealth.booking import lifecycle, notifications, reminders, waitlist

HOLD_SWEEP_EVERY_S = 30
NO_SHOW_EVERY_S = 300
DISPATCH_EVERY_S = 60
EXPIRE_WAITLIST_EVERY_S = 300
REMINDERS_EVERY_S = 300


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
    """The safety net of the sending task (notifications.SEND_TASK): what a lost task left pending."""
    return await notifications.dispatch_with(runtime)


@queue.periodic("booking.expire_waitlist", every_s=EXPIRE_WAITLIST_EVERY_S)
async def expire_waitlist(runtime: queue.Runtime) -> int:
    """Expire the waiting entries whose session can no longer be booked (started, or past its cut-off)."""
    return await waitlist.expire_waiting(runtime.database, runtime.clock)


@queue.periodic("booking.send_reminders", every_s=REMINDERS_EVERY_S)
async def send_reminders(runtime: queue.Runtime) -> int:
    """Queue (and have sent) the day-before reminders whose hospital's reminder time has come."""
    return await reminders.send_reminders(runtime.database, runtime.clock)
