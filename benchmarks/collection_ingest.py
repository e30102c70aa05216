"""Bulk ingest throughput, server memory and real-time latency of data collection, against PostgreSQL.

Spawns the server (uvicorn, 127.0.0.1) on CITYHEALTH_DATABASE_URL, registers a hospital and mints a machine
client token with the server's own key (same CITYHEALTH_VAR_DIR), generates an NDJSON file with the real mix
of forms and 2% invalid records, uploads it through the bulk path, waits for the job, then drives the
real-time path at 200 requests/s of 100-record batches. Last line:
records_per_s=N peak_rss_mb=M realtime_p99_ms=P
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories.collection import make_record

from cityhealth.clock import SystemClock
from cityhealth.config import Environment, load_settings
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.registry.models import Organization
from cityhealth.security.models import MachineClient
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.tokens import issue_access_token

# Share of each form in a hospital's feed (lab and prescriptions dominate, as in the bulletin's volumes).
MIX = {
    "patient_master_index": 4,
    "outpatient_visit": 14,
    "outpatient_diagnosis": 14,
    "prescription": 18,
    "lab_report": 20,
    "exam_report": 5,
    "admission": 2,
    "inpatient_order": 14,
    "surgery": 1,
    "discharge": 2,
    "settlement": 6,
}
INVALID_SHARE = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def register(url: str, code: str) -> int:
    database = Database(url)
    now = SystemClock().now()
    try:
        async with database.transaction() as session:
            org = Organization(
                code=code,
                name=f"基准医院{code}",
                kind="hospital",
                area_code=None,
                active_from=date(2020, 1, 1),
                created_at=now,
                updated_at=now,
            )
            session.add(org)
            await session.flush()
            # The token endpoint wants a signed client assertion; the benchmark registers the client row and
            # mints its access token with the server's key instead (same CITYHEALTH_VAR_DIR).
            session.add(
                MachineClient(
                    client_id=f"bench-{code}",
                    name="benchmark",
                    organization_id=org.id,
                    scopes=Scope.COLLECTION_UPLOAD.value,
                    jwks='{"keys": []}',
                    created_at=now,
                    updated_at=now,
                )
            )
            return org.id
    finally:
        await database.dispose()


def token(organization_id: int, code: str) -> str:
    settings = load_settings()
    principal = Principal(
        kind=PrincipalKind.CLIENT,
        subject=f"client:bench-{code}",
        scopes=frozenset({Scope.COLLECTION_UPLOAD}),
        organization_id=organization_id,
    )
    return issue_access_token(
        principal, key=settings.secret("token_signing_key"), now=SystemClock().now(), ttl_s=settings.access_token_ttl_s
    )


def generate(path: Path, code: str, count: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    forms = list(MIX)
    weights = list(MIX.values())
    base = SystemClock().now() - timedelta(hours=6)
    invalid = 0
    with path.open("wb") as out:
        for i in range(count):
            form = rng.choices(forms, weights)[0]
            record = make_record(form, code, f"{form[:3]}-{i}", base + timedelta(seconds=i % 18000))
            if rng.random() < INVALID_SHARE:
                invalid += 1
                record["action"] = 7  # a code outside CH.action
            out.write(orjson.dumps({"form": form, **record}) + b"\n")
    return invalid


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bulk(base_url: str, code: str, org_id: int, path: Path) -> tuple[float, dict[str, object]]:
    async def stream():  # type: ignore[no-untyped-def]
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(3600.0)) as client:
        started = time.perf_counter()
        response = await client.post(
            "/api/collection/jobs",
            content=stream(),
            headers={"Authorization": f"Bearer {token(org_id, code)}", "content-type": "application/x-ndjson"},
        )
        response.raise_for_status()
        job_id = response.json()["id"]
        while True:
            job = (
                await client.get(
                    f"/api/collection/jobs/{job_id}", headers={"Authorization": f"Bearer {token(org_id, code)}"}
                )
            ).json()
            if job["status"] in ("completed", "failed"):
                return time.perf_counter() - started, job
            await asyncio.sleep(0.2)


async def realtime(base_url: str, code: str, org_id: int, seconds: float, rate: float) -> list[float]:
    latencies: list[float] = []
    base = SystemClock().now() - timedelta(hours=1)
    headers = {"Authorization": f"Bearer {token(org_id, code)}", "content-type": "application/json"}
    counter = 0

    async def one(client: httpx.AsyncClient, n: int) -> None:
        records = [make_record("outpatient_visit", code, f"rt-{n}-{k}", base) for k in range(100)]
        body = orjson.dumps(records)
        started = time.perf_counter()
        response = await client.post("/api/collection/forms/outpatient_visit/records", content=body, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        tasks = []
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate)
            while counter < due:
                tasks.append(asyncio.create_task(one(client, counter)))
                counter += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--realtime-seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL database")
    var_dir = Path(os.environ.setdefault("CITYHEALTH_VAR_DIR", tempfile.mkdtemp(prefix="cityhealth-bench-")))
    upgrade(load_settings(env=Environment.DEVELOPMENT))
    code = f"BENCH{int(time.time())}"
    org_id = asyncio.run(register(url, code))
    print(f"cores={os.cpu_count()} records={args.records} database=postgresql var_dir={var_dir}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.ndjson"
        invalid = generate(path, code, args.records)
        print(f"generated {path.stat().st_size / 1e6:.0f} MB, {invalid} invalid records")
        port = free_port()
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "uvicorn",
                "cityhealth.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=os.environ.copy(),
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base_url}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            seconds, job = asyncio.run(bulk(base_url, code, org_id, path))
            rate = args.records / seconds
            rss = peak_rss_mb(server.pid)
            print(f"bulk: {seconds:.1f} s, job {job['status']}, counts {job['counts']}")
            latencies = sorted(asyncio.run(realtime(base_url, code, org_id, args.realtime_seconds, args.rate)))
            p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
            p50 = latencies[len(latencies) // 2] if latencies else float("nan")
            print(f"realtime: {len(latencies)} requests at {args.rate:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            rss = max(rss, peak_rss_mb(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"records_per_s={rate:.0f} peak_rss_mb={rss:.0f} realtime_p99_ms={p99:.1f}")


if __name__ == "__main__":
    main()
