"""CPU per message of the notification dispatcher, an SMS channel against a channel that carries the .ics file.

Seeds a scratch PostgreSQL database as `booking_cpu.py` does (CITYHEALTH_DATABASE_URL names the server), books
`--messages` slots through the ASGI app (each booking writes its confirmation to the outbox; no worker runs,
so they stay pending), gives the residents phone numbers, then sends the whole outbox `--rounds` times per
gateway, alternating, each time from pending again: once through a gateway that takes the text (with the
calendar link), once through one that takes the text and the attachment (the file made from the booking at
sending). Both gateways drop what they are given, so only the dispatcher's own work is counted.
Prints the process CPU (user + system) and the database backends' CPU per message, each round, and minima.
Last line: sms_us_per_message=X attached_us_per_message=Y (process + database, the minimum rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_cpu import _call
from benchmarks.booking_race import seed
from benchmarks.measure import database_cpu_s
from benchmarks.scratch import scratch_platform


class _Sms:
    async def send(self, phone: str, message: str, *, reference: str) -> None:
        return None


class _Attaching:
    carries_attachments = True

    async def send(self, phone: str, message: str, *, reference: str, attachment: Any = None) -> None:
        return None


async def _run(args: argparse.Namespace) -> None:
    from sqlalchemy import select, update

    from cityhealth.app import create_app
    from cityhealth.booking import notifications
    from cityhealth.booking.models import BookingSession, Notification
    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.registry.models import Resident
    from cityhealth.registry.protection import PHONE, cipher_for
    from cityhealth.security.principals import Principal, PrincipalKind, Scope
    from cityhealth.security.tokens import issue_access_token

    base_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server (the scratch database is made there)")
    platform = await scratch_platform(base_url, "msgs", server_worker_concurrency=0)
    scratch = platform.name
    try:
        settings = platform.settings
        await asyncio.to_thread(upgrade, settings)
        seeded = await seed(settings, args.messages, args.messages)
        app = create_app(settings)
        database, clock, cipher = app.state.database, app.state.clock, cipher_for(settings)
        now = datetime.now(UTC)
        token = issue_access_token(Principal(
            kind=PrincipalKind.CLIENT, subject="client:bench-app-0", client_app_id=seeded["app_ids"][0],
            scopes=frozenset({Scope.BOOKING_READ, Scope.BOOKING_WRITE})),
            key=settings.secret("token_signing_key"), now=now, ttl_s=settings.access_token_ttl_s)
        async with database.transaction() as tx:
            await tx.execute(update(BookingSession).where(BookingSession.id == seeded["session_id"]).values(
                released_at=now - timedelta(seconds=1)))
        statuses = [await _call(app, token, json.dumps({"session_id": seeded["session_id"], "id_number": n}).encode())
                    for n in seeded["numbers"]]
        async with database.transaction() as tx:
            for resident_id in (await tx.execute(select(Resident.id))).scalars().all():
                await tx.execute(update(Resident).where(Resident.id == resident_id).values(
                    phone_enc=cipher.encrypt(PHONE, f"139{resident_id:08d}")))
        figures: dict[str, list[float]] = {"sms": [], "attached": []}
        for _ in range(args.rounds):
            for name, gateway in (("sms", _Sms()), ("attached", _Attaching())):
                async with database.transaction() as tx:
                    await tx.execute(update(Notification).values(status="pending", sent_at=None, attempts=0))
                process, server = time.process_time(), await database_cpu_s(base_url, scratch)
                result = await notifications.dispatch(database, clock, cipher, gateway, limit=args.messages,
                                                      link_base=settings.public_base_url)
                spent = (time.process_time() - process) + (await database_cpu_s(base_url, scratch) - server)
                assert result.sent == args.messages, result  # noqa: S101 - every message went out
                figures[name].append(spent * 1e6 / args.messages)
        await database.dispose()
        print(f"bookings: {sum(s == 201 for s in statuses)} of {len(statuses)}; messages per round: {args.messages}")
        for name, values in figures.items():
            print(f"{name}: cpu us per message (process + database) by round: "
                  + ", ".join(f"{v:.0f}" for v in values))
        print(f"load average {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}")
        print(f"sms_us_per_message={min(figures['sms']):.0f} attached_us_per_message={min(figures['attached']):.0f}")
    finally:
        await drop_database(base_url, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
