"""Telemed benchmark, claim part: doctors of one reading centre racing to claim its cases, over real HTTP.

A scratch database of its own; the real server (`cityhealth serve`, its workers, PostgreSQL); a requester
hospital and a reading centre in the ECG network; `--claim-cases` cases submitted and accepted through the
API, all routed to that centre; `--claim-doctors` doctors, each a staff user of the centre with a session
and token of their own. The doctors are split into groups of `--claim-contenders`; the doctors of a group
walk the same cases in the same order, all at once, each claiming every case (a fresh request key each),
so every case is claimed by that many doctors at the same moment. A doctor who wins a case gives it back
(release) one time in four, and the group's slower doctors may then claim it again: claims after a release
are legitimate, two without one are not.

The count comes from the database, not from the answers: a case's events, in their order, may never show
two claims without a release between them. Printed: the answers by status, latency, claims per second, CPU
per request of the server and the database, and `double_claims=N` (goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.booking_race import free_port, percentile, raise_fd_limit
from benchmarks.measure import database_cpu_s, process_tree_cpu_s

RELEASE_SHARE = 0.25


def add_claim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--claim-doctors", type=int, default=50, help="doctors of the centre, each a principal")
    parser.add_argument("--claim-cases", type=int, default=1_000, help="cases routed to the centre")
    parser.add_argument("--claim-contenders", type=int, default=5, help="doctors claiming each case at once")
    parser.add_argument("--claim-workers", type=int, default=os.cpu_count() or 1, help="server worker processes")


async def _parties(settings: Any, doctors: int) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    """The requester's and the centre's headers, and each doctor's (rows made through the test factories)."""
    from tests.telemed import support

    from cityhealth.app import create_app
    from cityhealth.clock import SystemClock
    from cityhealth.db.engine import Database

    database = Database(settings.effective_database_url)
    app = create_app(settings, database=database, clock=SystemClock())
    try:
        requester = await support.requester(app)
        centre = await support.centre(app)
        return requester.headers, centre.headers, [await support.doctor(app, centre.organization_id)
                                                   for _ in range(doctors)]
    finally:
        await database.dispose()


async def _cases(base: str, requester: dict[str, str], centre: dict[str, str], count: int) -> list[int]:
    """`count` cases submitted by the requester and accepted by the centre, through the API."""
    import httpx
    from tests.telemed.support import CASES, case_body

    gate = asyncio.Semaphore(16)
    keys = itertools.count()

    async def one(client: httpx.AsyncClient, n: int) -> int:
        async with gate:
            submitted = await client.post(CASES, json=case_body(f"CLAIM-{n}"), headers=requester)
            submitted.raise_for_status()
            case_id = int(submitted.json()["id"])
            accepted = await client.post(f"{CASES}/{case_id}/accept", json={"request_key": f"a-{next(keys)}"},
                                         headers=centre)
            accepted.raise_for_status()
            return case_id

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, n) for n in range(count))))


async def _race(base: str, doctors: list[dict[str, str]], cases: list[int], contenders: int) -> dict[str, Any]:
    import httpx
    from tests.telemed.support import CASES

    groups = max(1, len(doctors) // contenders)
    answers: dict[str, int] = {}
    latencies: list[float] = []
    start = asyncio.Event()

    async def doctor(n: int, headers: dict[str, str]) -> None:
        rng = random.Random(n)
        mine = cases[n % groups :: groups]
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
            await client.get("/readyz")  # the connection open before the start
            await start.wait()
            for case_id in mine:
                began = time.perf_counter()
                claimed = await client.post(f"{CASES}/{case_id}/claim", json={"request_key": f"c-{n}-{case_id}"})
                latencies.append(time.perf_counter() - began)
                label = f"claim {claimed.status_code}"
                if claimed.status_code >= 400:
                    label += f" {claimed.json().get('code', '')}"
                answers[label] = answers.get(label, 0) + 1
                if claimed.status_code == 200 and rng.random() < RELEASE_SHARE:
                    released = await client.post(f"{CASES}/{case_id}/release",
                                                  json={"request_key": f"r-{n}-{case_id}"})
                    answers[f"release {released.status_code}"] = answers.get(f"release {released.status_code}", 0) + 1

    tasks = [asyncio.create_task(doctor(n, headers)) for n, headers in enumerate(doctors)]
    await asyncio.sleep(1.0)
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return {"answers": answers, "latencies": latencies, "wall_s": time.perf_counter() - began}


async def _wait_ready(port: int, server: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    """The server answers /readyz (its workers start slowly on a loaded machine)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited ({server.returncode}); see its log")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


async def double_claims(url: str, cases: list[int]) -> tuple[int, int, int]:
    """(claims, releases, double claims) from the cases' events in their order: a claim while the case is held
    (a claim before it with no release between) is a double claim."""
    from sqlalchemy import text

    from cityhealth.db.engine import Database

    database = Database(url)
    try:
        async with database.transaction() as session:
            rows = (await session.execute(text(
                "SELECT case_id, kind FROM telemed_case_events WHERE kind IN ('claimed', 'released') "
                "ORDER BY case_id, seq"))).all()
    finally:
        await database.dispose()
    wanted = set(cases)
    claims = releases = double = 0
    held: dict[int, bool] = {}
    for case_id, kind in rows:
        if case_id not in wanted:
            continue
        if kind == "claimed":
            claims += 1
            double += held.get(case_id, False)
            held[case_id] = True
        else:
            releases += 1
            held[case_id] = False
    return claims, releases, double


async def claim_race(args: argparse.Namespace) -> int:
    """The claim race on a scratch database of the server at `args.url`: the double claims counted."""
    import signal

    from benchmarks.scratch import scratch_platform
    from benchmarks.telemed import _stop

    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade

    raise_fd_limit()
    made = await scratch_platform(args.url, "claims")
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, made.settings)
        requester, centre, doctors = await _parties(made.settings, args.claim_doctors)
        port = free_port()
        log = (made.workdir / "server.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
            [str(Path(sys.executable).parent / "cityhealth"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(args.claim_workers)], env=made.env, stdout=log, stderr=log, start_new_session=True)
        await _wait_ready(port, server)
        base = f"http://127.0.0.1:{port}"
        cases = await _cases(base, requester, centre, args.claim_cases)
        server_before = process_tree_cpu_s(server.pid)
        database_before = await database_cpu_s(args.url, made.name)
        raced = await _race(base, doctors, cases, args.claim_contenders)
        cpu = {"server": process_tree_cpu_s(server.pid) - server_before,
               "database": await database_cpu_s(args.url, made.name) - database_before}
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        server = None
        claims, releases, double = await double_claims(made.url, cases)
        _report(args, raced, cpu, claims, releases, double)
        return double
    finally:
        _stop(server)
        if not args.keep:
            await drop_database(args.url, made.name)


def _report(args: argparse.Namespace, raced: dict[str, Any], cpu: dict[str, float], claims: int, releases: int,
            double: int) -> None:
    latencies = sorted(raced["latencies"])
    requests = sum(raced["answers"].values())
    won = raced["answers"].get("claim 200", 0)
    print(f"claims: {args.claim_doctors} doctors, {args.claim_cases} cases, {args.claim_contenders} claiming each "
          f"at once; {len(latencies)} claims in {raced['wall_s']:.2f} s ({len(latencies) / raced['wall_s']:.0f}/s); "
          f"answers {dict(sorted(raced['answers'].items()))}")
    print(f"claims: latency p50={percentile(latencies, 0.5) * 1000:.1f} ms p99={percentile(latencies, 0.99) * 1000:.1f}"
          f" ms; cpu µs per request: " + ", ".join(f"{k}={v / requests * 1e6:.0f}" for k, v in cpu.items()))
    print(f"claims: in the events: {claims} claims ({won} answered 200), {releases} releases; "
          f"double_claims={double}")
    if claims != won:
        print(f"claims: MISMATCH: {won} claims answered 200, {claims} claim events")
