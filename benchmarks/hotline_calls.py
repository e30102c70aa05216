"""The calls part of benchmarks/hotline.py: the telephony system's event reports over HTTP on PostgreSQL.

The server is started and driven as benchmarks/booking_race.py does it (its helpers are reused): a scratch
database, `cityhealth serve` with keys of its own, a load generator in a process of its own (this module run
as a script), the server's and the database backends' CPU read from /proc (benchmarks/measure.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_race import _request, _wait_ready, free_port, percentile, raise_fd_limit
from benchmarks.measure import database_cpu_s, process_tree_cpu_s

GOAL_CALLS_PER_S = 2_000
MAX_EVENTS_PER_REPORT = 2_000  # hotline/schemas.py: a report's limit
# The province's 12320 lines: (line, city code, city name).
LINES = (("025-12320", "320100", "南京市"), ("0510-12320", "320200", "无锡市"), ("0516-12320", "320300", "徐州市"),
         ("0519-12320", "320400", "常州市"), ("0512-12320", "320500", "苏州市"), ("0513-12320", "320600", "南通市"),
         ("0518-12320", "320700", "连云港市"), ("0517-12320", "320800", "淮安市"), ("0515-12320", "320900", "盐城市"),
         ("0514-12320", "321000", "扬州市"), ("0511-12320", "321100", "镇江市"), ("0523-12320", "321200", "泰州市"),
         ("0527-12320", "321300", "宿迁市"))
# The six categories and their rough shares of the seed's calls.
CATEGORIES = (("consultation", 50), ("phone_booking", 20), ("self_service_voice", 18), ("manual_service", 8),
              ("complaint", 3.7), ("crisis_intervention", 0.3))
QUEUES = ("consultation", "booking", "complaint", "general")
LATE, REPEATED = 0.04, 0.02  # shares of events reported some reports late, and sent again
CLIENT_ID = "bench-cti"


def add_call_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=50_000, help="calls the telephony system reports")
    parser.add_argument("--history", type=int, default=28_000,
                        help="calls already held when the reports begin (the seed's peak day: 28,000)")
    parser.add_argument("--skip-calls", action="store_true", help="leave out the calls part")
    parser.add_argument("--reporters", type=int, default=4, help="the CTI's reporting connections")
    parser.add_argument("--report-events", type=int, default=1_000, help="events in a report, about")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered calls/s (reports every fraction of a second); 0: back to back")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the calls' scratch database")


# --- The telephony system's stream -----------------------------------------------------------------------


def _call(rng: random.Random, call_id: str, start: datetime) -> list[tuple[int, dict[str, Any]]]:
    """A call's events, each with the report (counted from the call's first) it belongs in."""
    def event(n: int, kind: str, seconds: float, **fields: str) -> dict[str, Any]:
        at = (start + timedelta(seconds=seconds)).isoformat()
        return {"call_id": call_id, "event_id": f"e{n}", "kind": kind, "at": at, **fields}

    opening = {"city_line": rng.choice(LINES)[0]}
    if rng.random() < 0.9:  # the others withheld
        opening["caller_number"] = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    category = rng.choices([c for c, _ in CATEGORIES], [w for _, w in CATEGORIES])[0]
    first = [(0, event(1, "start", 0, **opening)), (0, event(2, "ivr", 4, ivr_node="main"))]
    if category == "self_service_voice":
        return [*first, (1, event(3, "ivr", 20, ivr_node="main>self_service")),
                (1 + rng.randint(0, 2), event(4, "end", 60 + rng.randrange(120), category=category,
                                              outcome="self_served"))]
    answered = 30 + rng.randrange(60)
    outcome = rng.choices(("resolved", "transferred", "call_back"), (85, 10, 5))[0]
    return [*first, (1, event(3, "queue", 15, queue=rng.choice(QUEUES))),
            (2, event(4, "answer", answered, agent=f"staff:{rng.randrange(1, 400)}")),
            (3 + rng.randint(0, 3), event(5, "end", answered + 60 + rng.randrange(600), category=category,
                                          outcome=outcome))]


def cti_reports(calls: int, reporters: int, report_events: int, prefix: str,
                seed: int = 12320) -> tuple[list[list[bytes]], int, int]:
    """Each reporter's reports in sending order (JSON bodies), the distinct events and the events sent."""
    rng = random.Random(seed)
    base = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    per_report = max(1, report_events // 5)  # calls a reporter starts per report: ~report_events a report
    moments: list[dict[int, list[dict[str, Any]]]] = [defaultdict(list) for _ in range(reporters)]
    distinct = sent = 0
    for n in range(calls):
        reporter, first = n % reporters, (n // reporters) // per_report
        for offset, event in _call(rng, f"{prefix}{n:07d}", base + timedelta(seconds=n / 2_000)):
            distinct += 1
            report = first + offset + (rng.randint(1, 3) if rng.random() < LATE else 0)
            moments[reporter][report].append(event)
            if rng.random() < REPEATED:  # sent again, in the same report or one of the next two
                moments[reporter][report + rng.randint(0, 2)].append(event)
    reports: list[list[bytes]] = []
    for mine in moments:
        bodies = []
        for moment in sorted(mine):
            events = mine[moment]
            sent += len(events)
            rng.shuffle(events)
            bodies += [orjson.dumps({"events": events[i:i + MAX_EVENTS_PER_REPORT]})
                       for i in range(0, len(events), MAX_EVENTS_PER_REPORT)]
        reports.append(bodies)
    return reports, distinct, sent


# --- Load generator (this module run as a script) ------------------------------------------------------


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    reports, distinct, sent = cti_reports(spec["calls"], spec["reporters"], spec["report_events"], "cti-")
    host, port, interval = spec["host"], spec["port"], spec["interval_s"]
    head = (f"POST /api/hotline/call-events HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {spec['token']}\r\nContent-Type: application/json\r\n").encode()
    results: list[list[Any]] = []  # [latency ms, status, accepted, duplicates, attempts]
    connections = [await asyncio.open_connection(host, port) for _ in reports]
    begin = time.perf_counter() + 0.05

    async def reporter(n: int, bodies: list[bytes]) -> None:
        reader, writer = connections[n]
        for k, body in enumerate(bodies):
            due = begin + k * interval
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            origin = due if interval else time.perf_counter()
            payload = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            attempts, status, answer = 0, 0, b""
            while attempts < 5 and status in (0, 409):  # 409: another report made one of its calls meanwhile
                attempts += 1
                try:
                    status, answer = await _request(reader, writer, payload)
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
            counted = orjson.loads(answer) if status == 200 else {}
            results.append([(time.perf_counter() - origin) * 1000, status, counted.get("accepted", 0),
                            counted.get("duplicates", 0), attempts])
        writer.close()

    await asyncio.gather(*(reporter(n, bodies) for n, bodies in enumerate(reports)))
    return {"results": results, "wall_s": time.perf_counter() - begin, "distinct": distinct, "sent": sent}


def loadgen_main(spec_path: str, out_path: str) -> None:
    import uvloop

    raise_fd_limit()
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(uvloop.run(_loadgen(spec))))


# --- Orchestration ----------------------------------------------------------------------------------------


async def _seed(settings: Any) -> None:
    """The city lines and the telephony system's machine client."""
    from cityhealth.clock import SystemClock
    from cityhealth.db.engine import Database
    from cityhealth.hotline import service
    from cityhealth.hotline.schemas import CityLineIn
    from cityhealth.security.models import MachineClient
    from cityhealth.security.principals import Scope

    clock = SystemClock()
    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as session:
            for line, code, name in LINES:
                await service.put_city_line(session, clock, None, line, CityLineIn(city_code=code, city_name=name),
                                            operator="bench")
            session.add(MachineClient(client_id=CLIENT_ID, name="省12320话务平台", scopes=Scope.HOTLINE_TELEPHONY.value,
                                      jwks='{"keys": []}', created_at=clock.now(), updated_at=clock.now()))
    finally:
        await database.dispose()


_HISTORY_CALLS = """
INSERT INTO hotline_calls (telephony_call_id, state, city_line_id, city_code, started_at, business_date, start_hour,
    ivr_path, queue, queued_at, answered_at, agent, ended_at, reported_category, category, outcome, created_at,
    updated_at)
SELECT 'history-' || lpad(n::text, 7, '0'), 'ended', l.id, l.city_code, t, (t AT TIME ZONE 'Asia/Shanghai')::date,
    extract(hour FROM t AT TIME ZONE 'Asia/Shanghai'), 'main', 'general', t + interval '15 s', t + interval '40 s',
    'staff:' || n % 400, t + interval '300 s', 'consultation', 'consultation', 'resolved', t, t
FROM generate_series(1, :calls) AS n
CROSS JOIN LATERAL (SELECT timestamptz '2026-03-01 08:00+08' + n * interval '2 s') AS x (t)
JOIN (SELECT id, city_code, row_number() OVER (ORDER BY id) - 1 AS k FROM hotline_city_lines) AS l
    ON l.k = n % (SELECT count(*) FROM hotline_city_lines)
"""
_HISTORY_EVENTS = """
INSERT INTO hotline_call_events (call_id, event_id, kind, at, value, category, fingerprint, received_at)
SELECT c.id, 'e' || e.n, e.kind, c.started_at + e.after, e.value, CASE WHEN e.kind = 'end' THEN c.category END,
    md5(c.id || e.kind) || md5(e.kind || c.id), c.created_at
FROM hotline_calls AS c
CROSS JOIN (VALUES (1, 'start', interval '0 s', 'history'), (2, 'ivr', interval '4 s', 'main'),
                   (3, 'queue', interval '15 s', 'general'), (4, 'answer', interval '40 s', 'staff'),
                   (5, 'end', interval '300 s', 'resolved')) AS e (n, kind, after, value)
"""


async def _history(url: str, calls: int) -> None:
    """A day's calls already held (`calls` of them, five events each) and the tables analysed, as in production:
    the report's lookups then run on the plans a live database has, not on an empty table's."""
    from sqlalchemy import text

    from cityhealth.db.engine import Database

    database = Database(url)
    try:
        async with database.transaction() as session:
            await session.execute(text(_HISTORY_CALLS), {"calls": calls})
            await session.execute(text(_HISTORY_EVENTS))
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE hotline_calls, hotline_call_events"))
    finally:
        await database.dispose()


async def _warm_up(port: int, token: str, workers: int) -> int:
    """A few reports on a few connections, so that every server process has its pool open; the calls made."""
    import httpx

    calls = 40 * workers
    reports, _, _ = cti_reports(calls, 2 * workers, 50, "warm-", seed=1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"}) as client:
        async def send(bodies: list[bytes]) -> None:
            for body in bodies:
                (await client.post("/api/hotline/call-events", content=body)).raise_for_status()

        await asyncio.gather(*(send(bodies) for bodies in reports))
    return calls


async def _stored(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from cityhealth.db.engine import Database

    database = Database(url)
    queries = {"calls": "SELECT count(*) FROM hotline_calls",
               "ended": "SELECT count(*) FROM hotline_calls WHERE state = 'ended'",
               "events": "SELECT count(*) FROM hotline_call_events",
               "crisis_follow_ups": "SELECT count(*) FROM hotline_crisis_follow_ups"}
    try:
        async with database.transaction() as session:
            return {name: int((await session.execute(text(sql))).scalar_one()) for name, sql in queries.items()}
    finally:
        await database.dispose()


async def calls(args: argparse.Namespace, base_url: str) -> float:
    """The calls part on a scratch database of `base_url`'s server: calls/s."""
    from benchmarks.scratch import scratch_platform

    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.security.principals import Principal, PrincipalKind, Scope
    from cityhealth.security.tokens import issue_access_token

    raise_fd_limit()
    made = await scratch_platform(base_url, "calls")
    scratch, scratch_url, workdir, env, settings = made.name, made.url, made.workdir, made.env, made.settings
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, settings)
        await _seed(settings)
        await _history(scratch_url, args.history)
        port = free_port()
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
            [str(Path(sys.executable).parent / "cityhealth"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(args.workers)], env=env, stdout=log, stderr=log, start_new_session=True)
        await _wait_ready(port)
        principal = Principal(kind=PrincipalKind.CLIENT, subject=f"client:{CLIENT_ID}",
                              scopes=frozenset({Scope.HOTLINE_TELEPHONY}))
        token = issue_access_token(principal, key=settings.secret("token_signing_key"), now=datetime.now(UTC),
                                   ttl_s=settings.access_token_ttl_s)
        warm = await _warm_up(port, token, args.workers)
        per_report = max(1, args.report_events // 5)
        spec = {"host": "127.0.0.1", "port": port, "token": token, "calls": args.calls,
                "reporters": args.reporters, "report_events": args.report_events,
                "interval_s": per_report * args.reporters / args.rate if args.rate else 0.0}
        spec_path, out_path = workdir / "spec.json", workdir / "results.json"
        spec_path.write_text(json.dumps(spec))
        pace = f"offered at {args.rate:.0f} calls/s" if args.rate else "back to back"
        print(f"calls: {args.calls} calls from {args.reporters} reporters, about {args.report_events} events a "
              f"report, {pace}; "
              f"server workers={args.workers}", flush=True)
        cpu_before = (process_tree_cpu_s(server.pid), await database_cpu_s(base_url, scratch))
        loadgen = await asyncio.create_subprocess_exec(sys.executable, __file__, str(spec_path), str(out_path))
        await loadgen.wait()
        load = os.getloadavg()
        cpu = {"server": process_tree_cpu_s(server.pid) - cpu_before[0],
               "database": await database_cpu_s(base_url, scratch) - cpu_before[1]}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["loadgen (with making the stream)"] = children.ru_utime + children.ru_stime
        outcome = json.loads(out_path.read_text())
        stored = await _stored(scratch_url)
        return _report(args, outcome, stored, cpu, warm, load)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if args.keep:
            print(f"kept database {scratch}")
        else:
            await drop_database(base_url, scratch)


def _report(args: argparse.Namespace, outcome: dict[str, Any], stored: dict[str, int], cpu: dict[str, float],
            warm: int, load: tuple[float, float, float]) -> float:
    results, wall = outcome["results"], outcome["wall_s"]
    latencies = sorted(r[0] for r in results)
    statuses: dict[int, int] = defaultdict(int)
    for r in results:
        statuses[r[1]] += 1
    accepted, duplicates = sum(r[2] for r in results), sum(r[3] for r in results)
    calls_per_s = args.calls / wall
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    print(f"calls: {len(results)} reports in {wall:.1f} s ({answers}, {sum(r[4] > 1 for r in results)} sent again "
          f"after a 409 or a lost connection); {outcome['sent']} events sent, "
          f"{accepted} accepted, {duplicates} duplicates")
    print(f"calls: {calls_per_s:.0f} calls/s (goal >= {GOAL_CALLS_PER_S}), {outcome['sent'] / wall:.0f} events/s; "
          f"report latency p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")
    expected = {"calls": args.history + args.calls + warm, "ended": args.history + args.calls + warm}
    checks = ", ".join(f"{k}={v}" + (f" (expected {expected[k]})" if k in expected and expected[k] != v else "")
                       for k, v in stored.items())
    print(f"calls: in the database {checks}; events accepted = distinct events sent: "
          f"{accepted == outcome['distinct']}")
    per_call = {name: seconds * 1e6 / args.calls for name, seconds in cpu.items()}
    both = per_call["server"] + per_call["database"]
    print("calls: cpu µs per call: " + ", ".join(f"{k}={v:.0f}" for k, v in per_call.items())
          + f"; server + database {both:.0f} -> at most {(os.cpu_count() or 1) * 1e6 / both:.0f} calls/s on "
          f"{os.cpu_count()} idle cores (load generator aside); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
          flush=True)
    return calls_per_s


if __name__ == "__main__":
    loadgen_main(sys.argv[1], sys.argv[2])
