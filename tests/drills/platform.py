"""The platform a drill drives: migrated on the drill's database, a hospital with a machine client, real time;
on demand, a booking city with an app that books for its residents.

In the drill's own process (an ASGI client) or as `cityhealth serve` processes sharing the same keys, so that
tokens minted here are honoured there and a process can be killed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from cityhealth.app import create_app
from cityhealth.clock import Clock, SystemClock, business_date
from cityhealth.config import Environment, Settings
from cityhealth.db.admin import create_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.principals import Principal, Scope
from cityhealth.security.tokens import issue_access_token
from tests.drills.cluster import Cluster, free_port, workspace
from tests.factories.booking import add_resident, build_world, online_app, publish, put_policy
from tests.factories.collection import add_organization, make_record
from tests.factories.security import headers_for, machine

KEYS = ("field_encryption_key", "lookup_hmac_key", "token_signing_key")
FORM = "outpatient_visit"


def new_keys() -> dict[str, str]:
    return {name: base64.urlsafe_b64encode(os.urandom(32)).decode() for name in KEYS}


def settings_for(database_url: str, var_dir: Path, keys: dict[str, str], **more: Any) -> Settings:
    return Settings(env=Environment.TEST, database_url=database_url, var_dir=var_dir,
                    public_base_url="https://cityhealth.test", **{k: SecretStr(v) for k, v in keys.items()}, **more)


def environment_for(settings: Settings, keys: dict[str, str], **more: str) -> dict[str, str]:
    """The environment of a `cityhealth serve|worker` process on the same database, keys and var directory."""
    return {**os.environ, "CITYHEALTH_ENV": "test", "CITYHEALTH_DATABASE_URL": settings.effective_database_url,
            "CITYHEALTH_VAR_DIR": str(settings.var_dir), "CITYHEALTH_PUBLIC_BASE_URL": "https://cityhealth.test",
            **{f"CITYHEALTH_{name.upper()}": value for name, value in keys.items()}, **more}


class Tokens:
    """A caller's bearer headers, minted as the platform mints them and renewed every 2 minutes (tokens live 5)."""

    def __init__(self, principal: Principal, key: bytes, ttl_s: int, clock: Clock) -> None:
        self.principal, self.key, self.ttl_s, self.clock = principal, key, ttl_s, clock
        self._issued: tuple[float, dict[str, str]] = (0.0, {})

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self._issued[0] > 120:
            token = issue_access_token(self.principal, key=self.key, now=self.clock.now(), ttl_s=self.ttl_s)
            self._issued = (time.monotonic(), {"Authorization": f"Bearer {token}"})
        return self._issued[1]


@dataclass
class Platform:
    """A migrated database with one hospital and its upload client; fresh tokens on demand."""

    app: FastAPI
    settings: Settings
    keys: dict[str, str]
    organization_id: int
    org_code: str
    uploader: Tokens = field(init=False)

    def __post_init__(self) -> None:
        self.uploader = self.tokens(machine(Scope.COLLECTION_UPLOAD, Scope.COLLECTION_READ,
                                            organization_id=self.organization_id))

    def tokens(self, principal: Principal) -> Tokens:
        return Tokens(principal, self.settings.secret("token_signing_key"), self.settings.access_token_ttl_s,
                      self.app.state.clock)

    def headers(self) -> dict[str, str]:
        return self.uploader.headers()

    def batch(self, prefix: str, size: int, at: datetime | None = None) -> list[dict[str, Any]]:
        moment = at or (self.app.state.clock.now() - timedelta(hours=1))
        return [make_record(FORM, self.org_code, f"{prefix}-{n}", moment) for n in range(size)]


@asynccontextmanager
async def platform(database_url: str, var_dir: Path, *, migrate: bool = True,
                   keys: dict[str, str] | None = None, **more: Any) -> AsyncIterator[Platform]:
    """The platform on `database_url` in this process, its lifespan running, with a hospital registered."""
    keys = keys or new_keys()
    settings = settings_for(database_url, var_dir, keys, **more)
    if migrate:
        await asyncio.to_thread(upgrade, settings)
    database = Database(settings.effective_database_url)
    app = create_app(settings, database=database, clock=SystemClock())
    try:
        async with app.router.lifespan_context(app):
            org = await add_organization(database, app.state.clock, "H0001", name="drill hospital")
            await headers_for(app, machine(Scope.COLLECTION_UPLOAD, Scope.COLLECTION_READ, organization_id=org.id))
            yield Platform(app, settings, keys, org.id, org.code)
    finally:
        await database.dispose()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)


@dataclass(frozen=True)
class BookingGround:
    """A booking city on the platform's database: residents of the master index, one session of its hospital
    published through the API, and the online app the residents book through."""

    session_id: int
    department_id: int
    residents: list[tuple[int, str]]  # (resident id, ID number)
    app: Tokens


async def booking_ground(site: Platform, *, residents: int, capacity: int, **policy: Any) -> BookingGround:
    """The session is 3 days ahead: bookable, and cancellable for two days yet (until 16:00 the day before).
    `policy`: release rules of the hospital set before it publishes (a short hold lifetime, say)."""
    database, now = site.app.state.database, site.app.state.clock.now()
    world = await build_world(database, now)
    people = [await add_resident(database, site.settings, now, n) for n in range(residents)]
    async with client_of(site.app) as local:
        if policy:
            await put_policy(local, site.app, world, **policy)
        session = await publish(local, site.app, world, service_date=business_date(now) + timedelta(days=3),
                                capacity=capacity)
    principal = online_app(world)
    await headers_for(site.app, principal)  # the app's client row
    return BookingGround(session["id"], world.department_id, people, site.tokens(principal))


def serve(settings: Settings, keys: dict[str, str], port: int, log: Path, **more: str) -> subprocess.Popen[bytes]:
    """`cityhealth serve` on 127.0.0.1:`port` (one process), on the platform's database and keys."""
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cityhealth.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment_for(settings, keys, **more), stdout=subprocess.DEVNULL, stderr=log.open("ab"),
        start_new_session=True,  # its own process group, which a crash drill kills whole
    )


async def wait_ready(base_url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base_url} not ready within {timeout_s:.0f} s")


def start_worker(site: Platform, directory: Path, *, chunk_rows: int = 100) -> subprocess.Popen[bytes]:
    """`cityhealth worker --concurrency 1` on the platform's database, in `directory`: heartbeat 1 s, taken as
    stalled after 3 s, bulk chunks of `chunk_rows` (many moments for a crash drill to kill it inside a job)."""
    directory.mkdir(parents=True, exist_ok=True)
    environment = environment_for(site.settings, site.keys, CITYHEALTH_WORKER_HEARTBEAT_S="1",
                                  CITYHEALTH_WORKER_STALLED_AFTER_S="3", CITYHEALTH_BULK_CHUNK_ROWS=str(chunk_rows))
    return subprocess.Popen(
        [sys.executable, "-m", "cityhealth.cli", "worker", "--concurrency", "1"], cwd=directory, env=environment,
        stdout=subprocess.DEVNULL, stderr=(directory / "worker.log").open("ab"),
        start_new_session=True,  # its process group: killed with any prepare processes it started
    )


@asynccontextmanager
async def served(site: Platform, root: Path) -> AsyncIterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    """`site`'s platform as processes, ready: a `cityhealth serve` and, on PostgreSQL, a `cityhealth worker` beside
    it (the server's own task worker off; on SQLite the server runs the tasks). Their base URL and the processes by
    name; on leaving, each is sent SIGTERM and killed if it has not ended within 30 s."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    port = free_port()
    try:
        if site.app.state.database.is_sqlite:
            processes["server"] = serve(site.settings, site.keys, port, root / "serve.log")
        else:
            processes["server"] = serve(site.settings, site.keys, port, root / "serve.log",
                                        CITYHEALTH_SERVER_WORKER_CONCURRENCY="0")
            processes["worker"] = start_worker(site, root / "worker")
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(base_url)
        yield base_url, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class CrashRig:
    """A crash drill's ground: a throwaway platform directory with its database (a SQLite file, or a database on a
    PostgreSQL cluster of the drill's own), a checker's own connection to it, and the `cityhealth serve` process
    (one worker, on a free port; on PostgreSQL with its own task worker, which runs the periodic work) that the
    drill kills and starts again."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.checker = Database(self.url)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._site: Platform | None = None
        self._server: subprocess.Popen[bytes] | None = None

    async def serve(self, site: Platform) -> None:
        """Start the server on `site`'s settings and keys, and wait until it answers ready."""
        self._site = site
        self._server = serve(site.settings, site.keys, self.port, self.root / "serve.log", CITYHEALTH_WORKERS="1")
        await wait_ready(self.base_url)

    async def chain_ok(self) -> bool:
        return (await verify_chain(self.checker)).problem is None

    async def crash(self) -> bool:
        """SIGKILL the server's process group, verify the audit chain while it is down, start it again; True when
        the chain verified."""
        if self._server is None or self._site is None:
            raise RuntimeError("crash() before serve(): there is no server to kill")
        os.killpg(self._server.pid, signal.SIGKILL)
        self._server.wait()
        verified = await self.chain_ok()
        await self.serve(self._site)
        return verified

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.send_signal(signal.SIGTERM)
            self._server.wait(timeout=30)


@asynccontextmanager
async def crash_rig(prefix: str, backend: str = "sqlite") -> AsyncIterator[CrashRig]:
    """A crash drill's rig in a new temporary directory, on `backend` (sqlite or postgresql); on leaving, the
    server stopped, the cluster stopped and everything removed."""
    root = workspace(prefix) if backend == "postgresql" else Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(root, "data") if backend == "postgresql" else None
    try:
        if cluster is None:
            url = f"sqlite:///{root / 'cityhealth.sqlite'}"
        else:
            cluster.init()
            cluster.start()
            url = await create_database(cluster.url, "drill")
        rig = CrashRig(root, url)
        try:
            yield rig
        finally:
            rig.stop()
            await rig.checker.dispose()
    finally:
        if cluster is not None:
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
