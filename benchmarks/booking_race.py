"""Release-moment booking race against PostgreSQL: no overbooking, and how fast the whole path answers.

Creates a scratch database on the server of CITYHEALTH_DATABASE_URL (dropped afterwards), migrates it,
registers a hospital, client apps with their machine clients and C residents, publishes one session of S
slots released a few seconds ahead, and starts the real server (`cityhealth serve`: uvicorn, JSON request
logs, the production middleware) on 127.0.0.1. A separate load-generator process (asyncio + uvloop over raw
keep-alive HTTP/1.1, one connection per client) then has C clients make A booking attempts in total from
the release moment, each with its own Idempotency-Key, through the apps' tokens (real-name: each attempt
names the client's resident by ID number). The full path runs: authentication and client liveness,
real-name and cap checks, idempotency, audit.

Arrivals are open-loop by default (like wrk2 -R): the clients' attempts are spread to offer `--rate`
requests/s from the release moment, the way a crowd keeps pressing "book" at release time, and latency
is measured per attempt. A closed loop with C connections and no pause cannot show a p99 below C/throughput
(Little's law), so `--burst` (every client fires at once and retries at once) is there to show the peak
throughput instead. The invariants are checked from the database afterwards, never from the responses.
Last line: confirmed=N oversold=0 double=0 p99_ms=X bookings_per_s=Y

`--bare RACE_SCRIPT` also runs, in the same run and after this one, a bare ceiling under the same load: a
minimal FastAPI + asyncpg app that books with one conditional UPDATE and no rules, authentication or audit
(kept outside this repository; its race script prints `… server_cpu_ms=Z`). The machines these run on are
noisy, so only a ratio measured side by side means anything: the report then gives this server's CPU per
request over the bare app's (the goal is at most 1.25). Its script gives its own server a fixed few seconds
to start, which a loaded machine can miss: a failed run is tried again (`--bare-tries`, 3 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import database_cpu_s, process_tree_cpu_s

APPS = (("健康南京客户端", "online_12320"), ("我的南京客户端", "online_12320"),
        ("南京卫生 12320 微信平台", "online_12320"), ("就医 160", "third_party"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- Load generator (runs in its own process) ------------------------------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> tuple[int, bytes]:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _loadgen(spec: dict[str, Any]) -> list[list[Any]]:
    host, port = spec["host"], spec["port"]
    clients: list[list[str]] = spec["clients"]
    per_client: int = spec["attempts_per_client"]
    interval: float = spec["interval_s"]
    burst: bool = spec["burst"]
    release = spec["release_epoch"]
    results: list[list[Any]] = []
    rng = random.Random(7)
    connect_gate = asyncio.Semaphore(64)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with connect_gate:
            return await asyncio.open_connection(host, port)

    async def client(token: str, id_number: str) -> None:
        reader, writer = await connect()
        offset = 0.0 if burst else rng.uniform(0, interval)
        auth = f"Authorization: Bearer {token}\r\n"
        for attempt in range(per_client):
            due = release + (0.0 if burst else offset + attempt * interval)
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = json.dumps({"session_id": spec["session_id"], "id_number": id_number}).encode()
            payload = (f"POST /api/booking/bookings HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                       f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            sent_at = time.time()
            try:
                status, answer = await _request(reader, writer, payload)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                reader, writer = await connect()
                status, answer = await _request(reader, writer, payload)
            latency_ms = (time.perf_counter() - started) * 1000
            code = ""
            if status >= 400:
                try:
                    code = json.loads(answer).get("code", "")
                except ValueError:
                    code = "unparsable"
            results.append([sent_at - release, latency_ms, status, code])
        writer.close()

    await asyncio.gather(*(client(token, number) for token, number in clients))
    return results


def loadgen_main(spec_path: str, out_path: str) -> None:
    import uvloop

    raise_fd_limit()
    spec = json.loads(Path(spec_path).read_text())
    results = uvloop.run(_loadgen(spec))
    Path(out_path).write_text(json.dumps(results))


# --- Orchestration --------------------------------------------------------------------------------------


async def seed(settings: Any, clients: int, slots: int) -> dict[str, Any]:
    from sqlalchemy import insert, update

    from cityhealth.booking.availability import BookingRuntime
    from cityhealth.booking.models import BookingSession
    from cityhealth.booking.schedules import publish_session
    from cityhealth.booking.schemas import SessionCreate
    from cityhealth.clock import SystemClock, business_date
    from cityhealth.db.engine import Database
    from cityhealth.registry.identifiers import make_resident_id
    from cityhealth.registry.models import ClientApp, Department, Organization, Resident
    from cityhealth.registry.protection import ID_NUMBER, cipher_for
    from cityhealth.security.models import MachineClient
    from cityhealth.security.principals import Principal, PrincipalKind, Scope

    clock = SystemClock()
    now = clock.now()
    cipher = cipher_for(settings)
    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as tx:
            hospital = Organization(code="BENCH-GULOU", name="南京鼓楼医院", kind="hospital",
                                    active_from=date(2000, 1, 1), created_at=now, updated_at=now)
            tx.add(hospital)
            await tx.flush()
            department = Department(organization_id=hospital.id, subject_code="03", local_code="NK",
                                    local_name="内科", is_active=True, created_at=now, updated_at=now)
            tx.add(department)
            apps = [ClientApp(code=f"bench-app-{i}", name=name, channel=channel, is_active=True, created_at=now,
                              updated_at=now) for i, (name, channel) in enumerate(APPS)]
            tx.add_all(apps)
            await tx.flush()
            for i, app in enumerate(apps):
                tx.add(MachineClient(client_id=f"bench-app-{i}", name=app.name, client_app_id=app.id,
                                     scopes="booking.read booking.write", jwks='{"keys": []}', created_at=now,
                                     updated_at=now))
            numbers = [make_resident_id("320102", date(1950, 1, 1) + timedelta(days=i // 500), i % 500 * 2 + 1)
                       for i in range(clients)]
            await tx.execute(insert(Resident), [{
                "id_number_hash": cipher.lookup_hash(ID_NUMBER, number),
                "id_number_enc": cipher.encrypt(ID_NUMBER, number), "name": f"居民{i}", "sex": 1,
                "birth_date": date(1950, 1, 1) + timedelta(days=i // 500), "is_active": True,
                "created_at": now, "updated_at": now} for i, number in enumerate(numbers)])
            admin = Principal(kind=PrincipalKind.CLIENT, subject="client:bench-admin",
                              scopes=frozenset({Scope.BOOKING_ADMIN, Scope.BOOKING_SCHEDULE}))
            service_date = business_date(now) + timedelta(days=2)
            view, _ = await publish_session(tx, clock, BookingRuntime(), admin, SessionCreate(
                external_id="release-race", organization_id=hospital.id, department_id=department.id,
                service_date=service_date, start_time=datetime.strptime("08:00", "%H:%M").time(),  # noqa: DTZ007
                end_time=datetime.strptime("12:00", "%H:%M").time(), capacity=slots))  # noqa: DTZ007
            # Not released until the race starts: the release moment is set once the server is up.
            await tx.execute(update(BookingSession).where(BookingSession.id == view.id).values(
                released_at=now + timedelta(days=1)))
            return {"session_id": view.id, "app_ids": [app.id for app in apps], "numbers": numbers}
    finally:
        await database.dispose()


async def release_at(settings: Any, session_id: int, moment: datetime) -> None:
    from sqlalchemy import update

    from cityhealth.booking.models import BookingSession
    from cityhealth.db.engine import Database

    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as tx:
            await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(
                released_at=moment))
    finally:
        await database.dispose()


async def invariants(settings: Any, session_id: int) -> dict[str, int]:
    """Checked from the database: confirmed bookings, overbooking, double slots, residents over caps."""
    from sqlalchemy import text

    from cityhealth.db.engine import Database

    database = Database(settings.effective_database_url)
    active = "status IN ('held', 'booked', 'checked_in')"
    queries = {
        "confirmed": "SELECT count(*) FROM bookings WHERE session_id = :s AND status = 'booked'",
        "active": f"SELECT count(*) FROM bookings WHERE session_id = :s AND {active}",  # noqa: S608
        "capacity": "SELECT capacity FROM booking_sessions WHERE id = :s",
        "counter": "SELECT booked FROM booking_sessions WHERE id = :s",
        "double_slot": f"SELECT count(*) FROM (SELECT slot_no FROM bookings WHERE session_id = :s AND {active} "  # noqa: S608
                       "GROUP BY slot_no HAVING count(*) > 1) d",
        "double_resident": f"SELECT count(*) FROM (SELECT resident_id FROM bookings WHERE {active} "  # noqa: S608
                           "GROUP BY resident_id, department_id, service_date HAVING count(*) > 1) d",
        "over_department_cap": f"SELECT count(*) FROM (SELECT resident_id FROM bookings WHERE {active} "  # noqa: S608
                               "GROUP BY resident_id, service_date HAVING count(DISTINCT department_id) > 2) d",
        "audit_events": "SELECT count(*) FROM audit_events WHERE resource_type = 'booking'",
        "stats": "SELECT coalesce(sum(bookings), 0) FROM booking_stats_monthly",
    }
    try:
        async with database.transaction() as tx:
            return {name: int((await tx.execute(text(sql), {"s": session_id})).scalar_one())
                    for name, sql in queries.items()}
    finally:
        await database.dispose()


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=10000)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1250.0, help="offered booking requests/s (open loop)")
    parser.add_argument("--burst", action="store_true", help="closed loop: every client at once, no pause")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--bare", type=Path, help="the bare ceiling's race script, run after this race with "
                        "the same load, for the server CPU ratio")
    parser.add_argument("--bare-tries", type=int, default=3, help="runs of the bare race before giving up "
                        "(its server may miss its start-up wait on a loaded machine)")
    parser.add_argument("--loadgen", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(*args.loadgen)
        return
    asyncio.run(_orchestrate(args))


async def _orchestrate(args: argparse.Namespace) -> None:
    from benchmarks.scratch import scratch_platform

    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.security.principals import Principal, PrincipalKind, Scope
    from cityhealth.security.tokens import issue_access_token

    raise_fd_limit()
    base_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server (the scratch database is made there)")
    if args.attempts % args.clients:
        raise SystemExit("--attempts must be a multiple of --clients")
    made = await scratch_platform(base_url, "booking")
    scratch, workdir, env, settings = made.name, made.workdir, made.env, made.settings
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, settings)
        seeded = await seed(settings, args.clients, args.slots)
        port = free_port()
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
            [str(Path(sys.executable).parent / "cityhealth"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(args.workers)], env=env, stdout=log, stderr=log, start_new_session=True)
        await _wait_ready(port)
        now = datetime.now(UTC)
        key = settings.secret("token_signing_key")
        tokens = []
        for i, app_id in enumerate(seeded["app_ids"]):
            principal = Principal(kind=PrincipalKind.CLIENT, subject=f"client:bench-app-{i}",
                                  scopes=frozenset({Scope.BOOKING_READ, Scope.BOOKING_WRITE}), client_app_id=app_id)
            tokens.append(issue_access_token(principal, key=key, now=now, ttl_s=settings.access_token_ttl_s))
        release = time.time() + 8.0  # connections are opened and warm before the release moment
        await release_at(settings, seeded["session_id"], datetime.fromtimestamp(release, UTC))
        spec = {"host": "127.0.0.1", "port": port, "session_id": seeded["session_id"], "release_epoch": release,
                "attempts_per_client": args.attempts // args.clients, "interval_s": args.clients / args.rate,
                "burst": args.burst,
                "clients": [[tokens[i % len(tokens)], number] for i, number in enumerate(seeded["numbers"])]}
        spec_path, out_path = workdir / "spec.json", workdir / "results.json"
        spec_path.write_text(json.dumps(spec))
        server_cpu_before = process_tree_cpu_s(server.pid)
        database_cpu_before = await database_cpu_s(base_url, scratch)
        loadgen = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--loadgen", str(spec_path), str(out_path))
        await loadgen.wait()
        cpu = {"server": process_tree_cpu_s(server.pid) - server_cpu_before,
               "database": await database_cpu_s(base_url, scratch) - database_cpu_before,
               "loadgen": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
               + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime}
        results = json.loads(out_path.read_text())
        checked = await invariants(settings, seeded["session_id"])
        _report(args, results, checked, cpu)
        if args.bare is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            server = None
            _compare_with_bare(args, cpu["server"] * 1000 / len(results))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            await drop_database(base_url, scratch)


async def _wait_ready(port: int) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not become ready")


def _report(args: argparse.Namespace, results: list[list[Any]], checked: dict[str, int],
            cpu: dict[str, float]) -> None:
    latencies = sorted(r[1] for r in results)
    outcomes: dict[str, int] = {}
    for _, _, status, code in results:
        label = f"{status} {code}".strip()
        outcomes[label] = outcomes.get(label, 0) + 1
    started = min(r[0] for r in results)
    finished = max(r[0] + r[1] / 1000 for r in results)
    per_s = len(results) / (finished - started)
    p99 = percentile(latencies, 0.99)
    oversold = max(0, checked["active"] - checked["capacity"]) + max(0, checked["counter"] - checked["capacity"])
    double = checked["double_slot"] + checked["double_resident"] + checked["over_department_cap"]
    mode = "burst (closed loop)" if args.burst else f"open loop at {args.rate:.0f} offered/s"
    print(f"cores={os.cpu_count()} workers={args.workers} clients={args.clients} attempts={len(results)} "
          f"slots={args.slots} mode={mode}")
    print("responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    print(f"latency ms: p50={percentile(latencies, 0.5):.1f} p95={percentile(latencies, 0.95):.1f} "
          f"p99={p99:.1f} max={latencies[-1]:.1f}; wall {finished - started:.2f} s")
    by_status: dict[int, list[float]] = {}
    by_second: dict[int, list[float]] = {}
    for sent, latency, status, _ in results:
        by_status.setdefault(status, []).append(latency)
        by_second.setdefault(int(sent), []).append(latency)
    print("latency ms by status: " + ", ".join(
        f"{status}: p50={percentile(sorted(v), 0.5):.0f} p99={percentile(sorted(v), 0.99):.0f}"
        for status, v in sorted(by_status.items())))
    print("p99 ms by second sent after release: " + ", ".join(
        f"{second}s: {percentile(sorted(v), 0.99):.0f} ({len(v)})" for second, v in sorted(by_second.items())))
    print("database: " + ", ".join(f"{k}={v}" for k, v in checked.items()))
    per_request = {name: seconds * 1000 / len(results) for name, seconds in cpu.items()}
    total_ms = sum(per_request.values())
    load = os.getloadavg()
    # What the run cost, independent of whatever else the machine was doing: on `cores` idle cores the
    # three processes together could answer at most cores / total CPU per request.
    print("cpu ms per request: " + ", ".join(f"{k}={v:.2f}" for k, v in per_request.items())
          + f", total={total_ms:.2f} -> at most {os.cpu_count() or 1:d} cores / total = "
          f"{(os.cpu_count() or 1) * 1000 / total_ms:.0f} requests/s on idle cores; "
          f"load average during the run {load[0]:.1f}")
    print(f"confirmed={checked['confirmed']} oversold={oversold} double={double} p99_ms={p99:.0f} "
          f"bookings_per_s={per_s:.0f}")


def _compare_with_bare(args: argparse.Namespace, server_ms: float) -> None:
    """Run the bare ceiling under the same load and print the server CPU ratio (this server / the bare one)."""
    # Its script gives its own server a fixed few seconds to start before the load begins; on a loaded
    # machine a cold start (imports read from disk) can miss that, and the run fails at its first connection.
    # So the imports are warmed first, and a failed run is tried again: a failure leaves nothing behind (its
    # process group is ended, its database is dropped and made anew by its next run).
    subprocess.run([sys.executable, "-c", "import asyncpg, fastapi, httptools, pydantic, uvicorn, uvloop"],
                   check=False)
    for attempt in range(1, args.bare_tries + 1):
        code, lines = _run_bare(args)
        if code == 0 and lines and "server_cpu_ms=" in lines[-1]:
            break
        print(f"bare: the ceiling's race failed (exit {code}, try {attempt} of {args.bare_tries}): "
              + " | ".join(lines[-3:]), flush=True)
    else:
        return
    figures = dict(part.split("=", 1) for part in lines[-1].split())
    bare_ms = float(figures["server_cpu_ms"])
    print(f"bare: {lines[-1]}")
    print(f"server cpu ms per request: this={server_ms:.2f} bare={bare_ms:.2f} ratio={server_ms / bare_ms:.2f} "
          "(goal: at most 1.25)")


def _run_bare(args: argparse.Namespace) -> tuple[int, list[str]]:
    """One run of the bare ceiling's race script: its exit code and its output's lines."""
    with tempfile.TemporaryFile() as out:
        bare = subprocess.Popen(  # noqa: S603 - our own interpreter and a script the operator named
            [sys.executable, str(args.bare), "--clients", str(args.clients), "--attempts", str(args.attempts),
             "--slots", str(args.slots), "--rate", str(args.rate)], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            code = bare.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(bare.pid, signal.SIGTERM)  # its server too, should the script have died before it
        out.seek(0)
        return code, out.read().decode(errors="replace").strip().splitlines()


if __name__ == "__main__":
    main()
