"""The SMART Scheduling Links slot feed of a day with 10,000 published slots: full fetch and 304 latency.

Creates a scratch database on the server of CITYHEALTH_DATABASE_URL (dropped afterwards), migrates it,
seeds H hospitals with departments and N released sessions on one day (one Slot each) and as many on each
of --history-days past days (a live table's history, outside the feed's window), and starts the real
server (`cityhealth serve`, one worker) on 127.0.0.1. One client then, one request at a time:
- `full (state unchanged)`: GET slots.ndjson without a validator while nothing changes (the file of the
  current state is served from the per-process cache after one read of the validator);
- `full (state changed)`: the same after a session was written before each request (every fetch renders);
- `304`: GET with If-None-Match of the current ETag (the validator's one aggregate read, nothing rendered).
It prints per kind the latency p50/p99 and the CPU per request of the server (user + system of its process
tree over the kind's requests; the writes of the changed-state rounds are made from this process, not the
server's) and of the database's backends. Goals: full fetch <= 200 ms, 304 <= 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_race import free_port, percentile
from benchmarks.measure import database_cpu_s, process_tree_cpu_s

SLOTS_PATH = "/api/booking/smart/slots.ndjson"


# The columns copied into the past days (every column but the id; the external id made unique per day).
_HISTORY_COPY = (
    "INSERT INTO booking_sessions ({columns}) SELECT {values} FROM booking_sessions s, "
    "generate_series(3, :days + 2) d")


async def seed_history(database: Any, days: int) -> None:
    """The day's sessions copied into `days` past days, as a live table holds them (the feed reads only its
    window), then VACUUM ANALYZE, as autovacuum leaves a table that is mostly read."""
    from sqlalchemy import Table, text

    from cityhealth.booking.models import BookingSession

    table: Table = BookingSession.__table__  # type: ignore[assignment]
    columns = [c.key for c in table.c if c.key != "id"]
    shifted = {"service_date": "s.service_date - d", "external_id": "s.external_id || '-h' || d",
               **{c: f"s.{c} - d * interval '1 day'" for c in ("starts_at", "ends_at", "pickup_deadline",
                                                              "released_at")}}
    if days > 0:
        async with database.transaction() as tx:
            await tx.execute(text(_HISTORY_COPY.format(
                columns=", ".join(columns), values=", ".join(shifted.get(c, f"s.{c}") for c in columns))),
                {"days": days})
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE booking_sessions"))


async def seed(settings: Any, sessions: int, hospitals: int, history_days: int = 0) -> list[int]:
    """Hospitals, departments and `sessions` released sessions the day after tomorrow (and the same on
    `history_days` past days); the ids of the day's sessions."""
    from sqlalchemy import insert, select

    from cityhealth.booking.models import CHANNELS, BookingSession
    from cityhealth.clock import BUSINESS_TZ, SystemClock, business_date
    from cityhealth.db.engine import Database
    from cityhealth.registry.models import Department, Organization
    from cityhealth.security.models import MachineClient

    now = SystemClock().now()
    day = business_date(now) + timedelta(days=2)
    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as tx:
            orgs = [Organization(code=f"BENCH-{h:03d}", name=f"基准医院{h:03d}", kind="hospital",
                                 active_from=date(2000, 1, 1), address_line=f"健康路{h + 1}号", address_city="南京市",
                                 address_state="江苏省", postal_code="210008", booking_phone=f"025-8330{h:04d}",
                                 created_at=now, updated_at=now) for h in range(hospitals)]
            tx.add_all(orgs)
            await tx.flush()
            departments = [Department(organization_id=org.id, subject_code=f"{d + 3:02d}", local_code=f"D{d}",
                                      local_name=f"科室{d}", is_active=True, created_at=now, updated_at=now)
                           for org in orgs for d in range(10)]
            tx.add_all(departments)
            tx.add(MachineClient(client_id="bench-feed", name="slot finder", scopes="booking.read",
                                 jwks='{"keys": []}', created_at=now, updated_at=now))
            await tx.flush()
            rows = []
            for n in range(sessions):
                department = departments[n % len(departments)]
                start = datetime.combine(day, datetime.min.time(), tzinfo=BUSINESS_TZ) + timedelta(
                    hours=8, minutes=5 * (n // len(departments)) % 600)
                rows.append({
                    "organization_id": department.organization_id, "department_id": department.id,
                    "practitioner_id": None, "external_id": f"bench-{n}", "template_id": None,
                    "service_date": day, "starts_at": start, "ends_at": start + timedelta(minutes=30),
                    "pickup_deadline": start + timedelta(minutes=30), "released_at": now - timedelta(days=1),
                    "fee_class": "general", "capacity": 20, "booked": n % 21,  # every 21st is full
                    "slot_map": "1" * (n % 21) + "0" * (20 - n % 21), "last_slot_no": 0, "open_capacity": 20,
                    "open_booked": n % 21, "status": "open", "created_at": now, "updated_at": now,
                    **{f"quota_{c}": None for c in CHANNELS},
                    **{f"booked_{c}": (n % 21 if c == "online_12320" else 0) for c in CHANNELS}})
            await tx.execute(insert(BookingSession), rows)
            ids = list((await tx.execute(select(BookingSession.id).order_by(BookingSession.id))).scalars())
        await seed_history(database, history_days)
        return ids
    finally:
        await database.dispose()


async def touch(settings: Any, session_id: int) -> None:
    """Write one session (as a booking would), so the feed's state changes."""
    from sqlalchemy import update

    from cityhealth.booking.models import BookingSession
    from cityhealth.db.engine import Database

    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as tx:
            await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(
                updated_at=datetime.now(UTC)))
    finally:
        await database.dispose()


async def measure(client: Any, server_pid: int, headers: dict[str, str], rounds: int, database: tuple[str, str],
                  before_each: Any = None) -> tuple[list[float], float, float, set[int], int]:
    """(latencies ms sorted, server and database CPU ms per request, statuses, body bytes of the last)."""
    latencies, statuses, cpu, size = [], set(), 0.0, 0
    database_cpu = -await database_cpu_s(*database)
    for _ in range(rounds):
        if before_each is not None:
            await before_each()
        cpu_before = process_tree_cpu_s(server_pid)
        started = time.perf_counter()
        response = await client.get(SLOTS_PATH, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu += process_tree_cpu_s(server_pid) - cpu_before
        statuses.add(response.status_code)
        size = len(response.content)
    # The database's CPU over the kind's requests (for the changed-state kind, with the writes before them).
    database_cpu += await database_cpu_s(*database)
    return sorted(latencies), cpu * 1000 / rounds, database_cpu * 1000 / rounds, statuses, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--hospitals", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200, help="requests per kind (the changed-state kind: 1/4)")
    parser.add_argument("--history-days", type=int, default=30,
                        help="past days holding as many sessions each, outside the feed's window")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    asyncio.run(_orchestrate(parser.parse_args()))


async def _orchestrate(args: argparse.Namespace) -> None:
    import httpx
    from benchmarks.booking_race import _wait_ready
    from benchmarks.scratch import scratch_platform

    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.security.principals import Principal, PrincipalKind, Scope
    from cityhealth.security.tokens import issue_access_token

    base_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server (the scratch database is made there)")
    made = await scratch_platform(base_url, "feed")
    scratch, workdir, env, settings = made.name, made.workdir, made.env, made.settings
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, settings)
        ids = await seed(settings, args.sessions, args.hospitals, args.history_days)
        port = free_port()
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
            [str(Path(sys.executable).parent / "cityhealth"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], env=env, stdout=log, stderr=log, start_new_session=True)
        await _wait_ready(port)
        principal = Principal(kind=PrincipalKind.CLIENT, subject="client:bench-feed",
                              scopes=frozenset({Scope.BOOKING_READ}))
        token = issue_access_token(principal, key=settings.secret("token_signing_key"), now=datetime.now(UTC),
                                   ttl_s=settings.access_token_ttl_s)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            first = await client.get(SLOTS_PATH, headers=auth)
            if first.status_code != 200:
                raise SystemExit(f"the feed answered {first.status_code}: {first.text[:300]}")
            published = sum(1 for line in first.content.splitlines() if line)
            etag = first.headers["etag"]
            counter = iter(range(10**9))

            async def change() -> None:
                await touch(settings, ids[next(counter) % len(ids)])

            results = {
                "full (state unchanged)": await measure(client, server.pid, auth, args.rounds, (base_url, scratch)),
                "full (state changed)": await measure(client, server.pid, auth, max(args.rounds // 4, 1),
                                                      (base_url, scratch), change),
            }
            etag = (await client.get(SLOTS_PATH, headers=auth)).headers["etag"]
            results["304 (If-None-Match)"] = await measure(client, server.pid, auth | {"If-None-Match": etag},
                                                          args.rounds, (base_url, scratch))
        load = os.getloadavg()
        print(f"cores={os.cpu_count()} sessions={args.sessions} published_slots={published} "
              f"history_days={args.history_days} "
              f"load average {load[0]:.1f} (measured under load)")
        for kind, (latencies, cpu_ms, database_ms, statuses, size) in results.items():
            print(f"{kind}: status={sorted(statuses)} bytes={size} p50={percentile(latencies, 0.5):.1f} ms "
                  f"p99={percentile(latencies, 0.99):.1f} ms cpu per request: server={cpu_ms:.2f} ms "
                  f"database={database_ms:.2f} ms")
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
        if not args.keep:
            await drop_database(base_url, scratch)


if __name__ == "__main__":
    main()
