"""Server CPU of one real-time upload (a machine client's 100-record batch), measured in process.

Drives the ASGI app directly (no HTTP client, no sockets: what is measured is the app and its database driver)
with authenticated POST /api/collection/forms/outpatient_visit/records requests on a scratch PostgreSQL
database (CITYHEALTH_DATABASE_URL names the server; the database is created and dropped) or, with --sqlite,
a fresh SQLite file. Before measuring, --stored records of the unit are put in the table directly, so that
a run shows whether the cost grows with the table. Each round sends --requests batches, --concurrency at a
time (1: every batch alone in its transaction, the group commit's worst case), a share --resend of them
batches sent before (every record a duplicate, the retried request); it prints the process CPU per request
(time.process_time) beside the wall time, and the database backends' CPU. Several rounds: quote the minimum.

Last line: cpu_us_per_request=N (the minimum over the rounds)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import database_cpu_s
from tests.factories.collection import make_record

from cityhealth.app import create_app
from cityhealth.clock import SystemClock
from cityhealth.config import Environment, Settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry.models import Organization
from cityhealth.security.models import MachineClient
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.tokens import issue_access_token

FORM = "outpatient_visit"
PATH = f"/api/collection/forms/{FORM}/records"
FAILURES_SHOWN: list[int] = []


def _token(settings: Settings, organization_id: int) -> bytes:
    principal = Principal(
        kind=PrincipalKind.CLIENT,
        subject="client:bench-realtime",
        scopes=frozenset({Scope.COLLECTION_UPLOAD}),
        organization_id=organization_id,
    )
    return issue_access_token(
        principal, key=settings.secret("token_signing_key"), now=SystemClock().now(), ttl_s=settings.access_token_ttl_s
    ).encode()


async def _register(database: Database, code: str) -> int:
    now = SystemClock().now()
    async with database.transaction() as session:
        org = Organization(code=code, name=f"基准医院{code}", kind="hospital", area_code=None,
                           active_from=date(2020, 1, 1), created_at=now, updated_at=now)
        session.add(org)
        await session.flush()
        session.add(MachineClient(client_id="bench-realtime", name="benchmark", organization_id=org.id,
                                  scopes=Scope.COLLECTION_UPLOAD.value, jwks='{"keys": []}', created_at=now,
                                  updated_at=now))
        return org.id


async def _store_directly(database: Database, organization_id: int, count: int) -> None:
    """`count` stored records of the unit (other ids than the batches'), written straight to the table."""
    if not count:
        return
    now = SystemClock().now()
    async with database.transaction() as session:
        if database.is_sqlite:
            await session.execute(text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                "INSERT INTO collection_records SELECT :org, :form, 'stored-' || i, 1, 1, "
                "substr(hex(randomblob(16)), 1, 32), '{}', :now, 202601, :now, :now, 0, NULL, NULL, NULL FROM n"
            ), {"count": count, "org": organization_id, "form": FORM, "now": now.replace(tzinfo=None).isoformat(" ")})
        else:
            await session.execute(text(
                "INSERT INTO collection_records SELECT :org, :form, 'stored-' || i, 1, 1, md5(i::text), '{}', "
                ":now, 202601, :now, :now, 0, NULL, NULL, NULL FROM generate_series(1, :count) AS i"
            ), {"count": count, "org": organization_id, "form": FORM, "now": now})
    if not database.is_sqlite:
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE collection_records"))


class Sender:
    """Batches of 100 new records (and re-sends of earlier ones) for one unit."""

    def __init__(self, code: str, records: int) -> None:
        self.code, self.records, self.sent = code, records, 0
        self.bodies: list[bytes] = []
        self.run = uuid.uuid4().hex[:6]

    def bodies_for(self, count: int, resend: float) -> list[bytes]:
        """`count` request bodies, a share `resend` of them re-sends of earlier ones."""
        return [self.body(random.random() < resend) for _ in range(count)]

    def body(self, resend: bool) -> bytes:
        if resend and self.bodies:
            return random.choice(self.bodies)
        base = SystemClock().now() - timedelta(hours=1)
        self.sent += 1
        body = orjson.dumps(
            [make_record(FORM, self.code, f"rt-{self.run}-{self.sent}-{k}", base) for k in range(self.records)]
        )
        self.bodies.append(body)
        return body


async def _post(app: Any, token: bytes, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + token),
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app works
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif status != 200 and not FAILURES_SHOWN:
            FAILURES_SHOWN.append(status)  # the first failure's problem document, so a broken run says why
            print(message.get("body", b"")[:500])

    await app(scope, receive, send)
    return status


async def _round(app: Any, token: bytes, bodies: list[bytes], concurrency: int) -> int:
    queue = list(reversed(bodies))
    failed = 0

    async def lane() -> None:
        nonlocal failed
        while queue:
            failed += await _post(app, token, queue.pop()) != 200

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return failed


def _callgrind(wanted: bool, state: str) -> None:
    """Under `valgrind --tool=callgrind --instr-atstart=no`: count instructions only in the measured rounds."""
    if wanted:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True  # noqa: S607
        )


async def main(args: argparse.Namespace) -> None:
    server_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    var_dir = Path(tempfile.mkdtemp(prefix="cityhealth-rtcpu-"))
    scratch = None
    if args.sqlite:
        url = f"sqlite:///{var_dir / 'bench.sqlite'}"
    elif server_url.startswith("postgres"):
        scratch = f"ch_bench_rt_{uuid.uuid4().hex[:8]}"
        url = await create_database(server_url, scratch)
    else:
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server, or pass --sqlite")
    try:
        settings = Settings(env=Environment.DEVELOPMENT, database_url=url, var_dir=var_dir, server_worker_concurrency=0)
        await asyncio.to_thread(upgrade, settings)
        database = Database(url)
        code = f"RT{uuid.uuid4().hex[:6].upper()}"
        org_id = await _register(database, code)
        await _store_directly(database, org_id, args.stored)
        app = create_app(settings, database=database)
        sender = Sender(code, args.records)
        figures = []
        async with app.router.lifespan_context(app):
            token = _token(settings, org_id)
            await _round(app, token, sender.bodies_for(args.warmup, args.resend), args.concurrency)
            for number in range(args.rounds):
                token = _token(settings, org_id)
                bodies = sender.bodies_for(args.requests, args.resend)  # made before the clock starts
                db_before = 0.0 if scratch is None else await database_cpu_s(server_url, scratch)
                profiler = cProfile.Profile(time.process_time) if args.profile else None
                _callgrind(args.callgrind, "on")
                cpu, wall = time.process_time(), time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                failed = await _round(app, token, bodies, args.concurrency)
                if profiler is not None:
                    profiler.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                _callgrind(args.callgrind, "off")
                db_cpu = 0.0 if scratch is None else await database_cpu_s(server_url, scratch) - db_before
                per_request = cpu / args.requests * 1e6
                figures.append(per_request)
                print(f"round {number + 1}: {args.requests} requests x {args.records} records, "
                      f"concurrency {args.concurrency}, {failed} failed: server CPU {per_request:.0f} µs/request, "
                      f"wall {wall / args.requests * 1e3:.2f} ms/request, database CPU "
                      f"{db_cpu / args.requests * 1e6:.0f} µs/request", flush=True)
                if profiler is not None:
                    pstats.Stats(profiler).sort_stats(args.profile).print_stats(40)
        async with database.transaction() as session:
            stored = (await session.execute(text("SELECT count(*) FROM collection_records"))).scalar_one()
        print(f"stored records at the end: {stored}")
        await database.dispose()
    finally:
        if scratch is not None:
            await drop_database(server_url, scratch)
    print(f"cpu_us_per_request={min(figures):.0f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--records", type=int, default=100, help="records per batch")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    parser.add_argument("--stored", type=int, default=0, help="records of the unit stored before measuring")
    parser.add_argument("--resend", type=float, default=0.0, help="share of batches that are re-sends")
    parser.add_argument("--profile", choices=("tottime", "cumulative"), help="print each round's cProfile")
    parser.add_argument("--callgrind", action="store_true",
                        help="run under valgrind --tool=callgrind --instr-atstart=no: instructions of the rounds only")
    parser.add_argument("--sqlite", action="store_true", help="a fresh SQLite file instead of PostgreSQL")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop: `cityhealth serve` runs uvloop (uvicorn's loop='auto' with "
                             "uvicorn[standard]), where each database round trip costs about a third as much CPU")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    print(f"loop={args.loop}")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
