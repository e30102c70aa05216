"""Server CPU per booking attempt, in-process: the ASGI app called directly, as uvicorn calls it.

Seeds a scratch PostgreSQL database as `booking_race.py` does (CITYHEALTH_DATABASE_URL names the server),
releases one session of `--slots` slots and makes `--attempts` authenticated attempts through the app's full
stack (middleware, authentication, idempotency, the pre-check, the gate, the group commit, audit, JSON access
log written to /dev/null), `--concurrency` at a time, in rounds. The slots go in the first round, which warms
up and is not counted: the timed rounds are the losers' path (sold out), 98 % of a release's requests.
Prints the process CPU per request (user + system, and user alone, steadier under load) over the timed
rounds: the minimum and each round. The machines these run on are noisy, so compare two trees back to back,
alternating, and quote minima. `--profile FILE` writes a cProfile of the first timed round; `--callgrind`
(under valgrind) counts its instructions, which the machine's load does not change.
Last line: cpu_us_per_request=X user_us_per_request=Y (the minimum rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_race import seed
from benchmarks.scratch import scratch_platform


async def _call(app: Any, token: str, body: bytes) -> int:
    """One POST /api/booking/bookings through the ASGI interface; returns the status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/booking/bookings", "raw_path": b"/api/booking/bookings", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode()),
                    (b"idempotency-key", uuid.uuid4().hex.encode()), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # the client never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _run(args: argparse.Namespace) -> None:
    from sqlalchemy import update

    from cityhealth.app import create_app
    from cityhealth.booking import api as booking_api
    from cityhealth.booking.models import BookingSession
    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.observability import JsonFormatter
    from cityhealth.security.principals import Principal, PrincipalKind, Scope
    from cityhealth.security.tokens import issue_access_token

    base_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server (the scratch database is made there)")
    platform = await scratch_platform(base_url, "bcpu", server_worker_concurrency=0)
    scratch = platform.name
    handler = logging.FileHandler(os.devnull)  # the server's JSON access log, written where it costs only CPU
    handler.setFormatter(JsonFormatter())
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    try:
        settings = platform.settings
        await asyncio.to_thread(upgrade, settings)
        rounds = args.rounds + 1  # the first round warms up and is not counted
        seeded = await seed(settings, args.clients, args.slots)
        app = create_app(settings)
        database = app.state.database
        await booking_api.runtime_of(app).warm(database)
        now = datetime.now(UTC)
        tokens = [issue_access_token(Principal(
            kind=PrincipalKind.CLIENT, subject=f"client:bench-app-{i}", client_app_id=app_id,
            scopes=frozenset({Scope.BOOKING_READ, Scope.BOOKING_WRITE})),
            key=settings.secret("token_signing_key"), now=now, ttl_s=settings.access_token_ttl_s)
            for i, app_id in enumerate(seeded["app_ids"])]
        async with database.transaction() as tx:
            await tx.execute(update(BookingSession).where(BookingSession.id == seeded["session_id"]).values(
                released_at=now - timedelta(seconds=1)))
        numbers = seeded["numbers"]
        bodies = [json.dumps({"session_id": seeded["session_id"], "id_number": n}).encode() for n in numbers]
        per_round = args.attempts // rounds
        figures: list[float] = []
        user: list[float] = []
        statuses: dict[int, int] = {}
        sequence = 0

        async def worker(count: int) -> None:
            nonlocal sequence
            for _ in range(count):
                i = sequence
                sequence += 1
                status = await _call(app, tokens[i % len(tokens)], bodies[i % len(bodies)])
                statuses[status] = statuses.get(status, 0) + 1

        for round_no in range(rounds):
            profile = cProfile.Profile() if args.profile and round_no == 1 else None
            if args.callgrind and round_no == 1:  # count the first timed round's instructions only
                subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)  # noqa: S603, S607
            started, user_started = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
            if profile is not None:
                profile.enable()
            await asyncio.gather(*(worker(per_round // args.concurrency) for _ in range(args.concurrency)))
            if args.callgrind and round_no == 1:
                subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)  # noqa: S603, S607
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            if round_no:
                figures.append((time.process_time() - started) * 1e6 / per_round)
                user.append((resource.getrusage(resource.RUSAGE_SELF).ru_utime - user_started) * 1e6 / per_round)
        await booking_api.runtime_of(app).close()
        await database.dispose()
        print("responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
        print("cpu us per request by round: " + ", ".join(f"{f:.0f}" for f in figures)
              + f"; load average {os.getloadavg()[0]:.1f}")
        print(f"cpu_us_per_request={min(figures):.0f} user_us_per_request={min(user):.0f}")
    finally:
        await drop_database(base_url, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slots", type=int, default=20, help="the session's slots (taken in the warm-up round)")
    parser.add_argument("--clients", type=int, default=2000, help="residents, as many as the race's clients")
    parser.add_argument("--concurrency", type=int, default=20, help="attempts in flight")
    parser.add_argument("--profile", help="write a cProfile of the first timed round to this file")
    parser.add_argument("--callgrind", action="store_true", help="run under `valgrind --tool=callgrind "
                        "--instr-atstart=no`: instructions are counted in the first timed round only")
    args = parser.parse_args()
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
