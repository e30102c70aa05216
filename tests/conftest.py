"""Test harness: every test gets its own freshly migrated database, on SQLite or PostgreSQL.

CITYHEALTH_TEST_DATABASE=sqlite (default) or postgresql picks the backend; for PostgreSQL the server at
CITYHEALTH_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres) is used, and the suite
creates and drops its own databases there. Migrations run once into a template; each test copies it.
On PostgreSQL the copies are made ahead and dropped behind, in batches, by threads of their own (a DROP DATABASE
waits for a checkpoint, a second or more on a busy server), so a test waits for neither.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from cityhealth.app import create_app
from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Environment, Settings
from cityhealth.db.admin import create_database, database_on, drop_database, fetch_on_server
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from tests.browser import browser, phone_browser  # noqa: F401 - the headless browser fixtures of the page tests
from tests.security import harness as security_harness

BACKEND = os.environ.get("CITYHEALTH_TEST_DATABASE", "sqlite")
PG_URL = os.environ.get("CITYHEALTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A fixed, ordinary moment; tests that need another one move the clock.
DEFAULT_NOW = datetime(2022, 6, 15, 9, 30, tzinfo=BUSINESS_TZ)


def pytest_report_header() -> str:
    return f"cityhealth test database: {BACKEND}" + (f" at {PG_URL}" if BACKEND == "postgresql" else "")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head, to be copied per test: a file path (SQLite) or a database name."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.sqlite"
        upgrade(Settings(env=Environment.TEST, database_url=f"sqlite:///{path}"))
        yield str(path)
        return
    name = f"ch_tmpl_{uuid.uuid4().hex[:10]}"
    url = asyncio.run(create_database(PG_URL, name))
    try:
        upgrade(Settings(env=Environment.TEST, database_url=url))
        yield name
    finally:
        asyncio.run(drop_database(PG_URL, name))


class _ClonePool:
    """PostgreSQL copies of the template, made `ahead` in advance and dropped after use, off the tests' path."""

    def __init__(self, server: str, template: str, ahead: int = 2) -> None:
        self._server = server
        self._template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self._doomed: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._failures: list[BaseException] = []
        self._maker = threading.Thread(target=self._make, name="clone-maker", daemon=True)
        self._dropper = threading.Thread(target=self._drop, name="clone-dropper", daemon=True)
        self._maker.start()
        self._dropper.start()

    def _make(self) -> None:
        while not self._stopping.is_set():
            name = f"ch_test_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(create_database(self._server, name, template=self._template))
            except BaseException as error:  # handed to the test that waits for this copy
                self._ready.put(error)
                return
            while True:
                try:
                    self._ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    if self._stopping.is_set():
                        self._doomed.put(name)
                        return

    def _drop(self) -> None:
        # Every drop waits for a checkpoint, seconds on a busy server; drops sent together share one, so the
        # copies discarded meanwhile go in one batch, and the dropper keeps up with any pace of tests.
        stopping = False
        while not stopping:
            batch = [self._doomed.get()]
            while len(batch) < 16:  # each drop is a connection: a batch stays well inside the server's limit
                try:
                    batch.append(self._doomed.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            names = [name for name in batch if name is not None]
            results = asyncio.run(self._drop_all(names))
            self._failures += [result for result in results if isinstance(result, BaseException)]

    async def _drop_all(self, names: list[str]) -> list[object]:
        return await asyncio.gather(*(drop_database(self._server, name) for name in names), return_exceptions=True)

    def take(self) -> str:
        """A fresh copy's name; the caller hands it back with `discard`."""
        made = self._ready.get(timeout=300)
        if isinstance(made, BaseException):
            raise RuntimeError("could not copy the migrated template") from made
        return made

    def discard(self, name: str) -> None:
        self._doomed.put(name)

    def close(self) -> None:
        """Stop making copies, drop every copy left and wait until all drops are done."""
        self._stopping.set()
        while True:
            try:
                left = self._ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(left, str):
                self._doomed.put(left)
        self._maker.join()
        while True:  # the maker may have queued one more while stopping
            try:
                left = self._ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(left, str):
                self._doomed.put(left)
        self._doomed.put(None)
        self._dropper.join()
        if self._failures:
            raise RuntimeError(f"{len(self._failures)} test databases were not dropped") from self._failures[0]


@pytest.fixture(scope="session")
def _clone_pool(migrated_template: str) -> Iterator[_ClonePool | None]:
    if BACKEND == "sqlite":
        yield None
        return
    pool = _ClonePool(PG_URL, migrated_template)
    try:
        yield pool
    finally:
        pool.close()


async def _end_connections(name: str) -> None:
    # What the test left connected is cut now, inside its event loop, as a DROP … WITH (FORCE) here would:
    # a task still waiting on one of them then fails and ends, instead of holding the loop's close for ever.
    await fetch_on_server(PG_URL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = $1 AND pid <> pg_backend_pid()", name)


@pytest.fixture
async def database_url(migrated_template: str, _clone_pool: _ClonePool | None,
                       tmp_path: Path) -> AsyncIterator[str]:
    if _clone_pool is None:
        path = tmp_path / "cityhealth.sqlite"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite:///{path}"
        return
    name = await asyncio.to_thread(_clone_pool.take)
    try:
        yield database_on(PG_URL, name)
    finally:
        await _end_connections(name)
        _clone_pool.discard(name)


@pytest.fixture
async def empty_database_url(_clone_pool: _ClonePool | None, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all, on the backend under test."""
    if _clone_pool is None:
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    name = f"ch_empty_{uuid.uuid4().hex[:12]}"
    url = await create_database(PG_URL, name)
    try:
        yield url
    finally:
        await _end_connections(name)
        _clone_pool.discard(name)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(DEFAULT_NOW)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env=Environment.TEST,
        database_url=database_url,
        var_dir=tmp_path / "var",
        simulated_clock=True,
        # Deliberately not the test client's Host (testserver): absolute URLs must come from here.
        public_base_url="https://cityhealth.test",
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.effective_database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def app(settings: Settings, database: Database, clock: SimulatedClock,
              request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database, clock=clock)
    # Every test's requests are checked for unaudited personal-data access and unmasked numbers.
    watch = security_harness.AppWatch(application, database, request.node.nodeid)
    try:
        async with application.router.lifespan_context(application):
            yield application
            await watch.check()
    finally:
        watch.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """The test's app behind uvicorn on a free 127.0.0.1 port, in this event loop."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    # The app fixture has run the lifespan already; uvicorn only serves.
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(500):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.01)
    if serving.done():
        serving.result()  # raises what stopped it
    assert server.started, "uvicorn did not start within 5 s"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        listener.close()


# --- The security harness's suite-wide part (tests/security/harness.py) ------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # Record the platform's log lines at every level, so the personal-data scan sees all of them.
    logging.getLogger("cityhealth").setLevel(logging.DEBUG)
    logging.getLogger().addHandler(security_harness.LogScanner())
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_WorkerRecords(), "cityhealth-security-records")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        # A worker's environment gains COLUMNS=80, which narrows CLI tables (Rich) unlike a run in one process.
        for name, value in workerinput["cityhealth_terminal"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _WorkerRecords:
    """Under pytest-xdist (`-n 2`) each worker process scans its own tests: the controller adds up what they
    saw, so the summary and the failed run on an unmasked number are the same as in one process."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        node.workerinput["cityhealth_terminal"] = {name: os.environ.get(name) for name in ("COLUMNS", "LINES")}

    @staticmethod
    def pytest_testnodedown(node: object, error: object) -> None:
        seen = getattr(node, "workeroutput", {}).get("security_harness")
        if seen is None:
            return
        record = security_harness.RECORD
        record.requests += seen["requests"]
        record.personal_requests += seen["personal_requests"]
        record.unaudited += seen["unaudited"]
        record.findings += [security_harness.Finding(*finding) for finding in seen["findings"]]


def pytest_runtest_setup(item: pytest.Item) -> None:
    security_harness.RECORD.current_test = item.nodeid


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    record = security_harness.RECORD
    if record.requests:
        terminalreporter.write_line(
            f"security harness: {record.requests} responses scanned; {record.personal_requests} requests touched "
            f"personal data, {record.unaudited} of them without an audit event; "
            f"{len(record.findings)} unmasked ID/phone numbers in responses or logs")
    for finding in record.findings:
        terminalreporter.write_line(f"  unmasked {finding.masked} in {finding.where} ({finding.test})", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    record = security_harness.RECORD
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports (see _WorkerRecords)
        workeroutput["security_harness"] = {
            "requests": record.requests, "personal_requests": record.personal_requests,
            "unaudited": record.unaudited,
            "findings": [(finding.test, finding.where, finding.masked) for finding in record.findings]}
        return
    # A log line is not tied to one test's app: an unmasked number anywhere fails the run here.
    if security_harness.RECORD.findings and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
