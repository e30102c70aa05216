"""Checks every test's app goes through (wired into tests/conftest.py), so the whole suite replays them.

1. Audit completeness: a request whose SQL touched a personal-data table must leave at least one audit
   event carrying its request id, whatever its outcome. Personal-data tables are `residents`,
   `resident_accounts` and every table declared with `info={"personal_data": True}`; a table declared
   with a tuple of column names instead (`info={"personal_data": ("caller_cipher", …)}`) holds personal
   data only in those columns, and a statement touches it only when it names one of them (an aggregate
   of a call's city and category reads nobody's data).
2. Personal-data scan: no response body or header, and no log record, may carry a whole ID number
   (18 characters, GB 11643 check character valid) or mobile number. The one exception is a response
   whose request was audited with detail `REVEALED`: the owner's own view or a privileged endpoint.
3. Stored masked copies: a table declared `info={"masked_personal_data": True}` (a bulk job's rejected
   rows) keeps personal data only masked; at the end of each test its rows are scanned like a response.
   Responses alone cannot stand for them: a stored row is read back only by the tests that export it.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Table, event, select
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhealth.db.engine import Database
from cityhealth.request_vars import request_id_var
from cityhealth.security.audit import REVEALED
from cityhealth.security.models import AuditEvent

DEFAULT_PERSONAL_TABLES = frozenset({"residents", "resident_accounts"})
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{16}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9][0-9]{9})(?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_TEXT_TYPES = ("application/json", "application/problem+json", "application/x-ndjson", "application/fhir+json",
               "text/", "application/xml", "application/hl7")
_STANDARD_LOG_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def personal_tables() -> dict[str, frozenset[str] | None]:
    """Each personal-data table and its personal columns (None: the whole row is personal)."""
    from cityhealth.models import metadata

    tables: dict[str, frozenset[str] | None] = dict.fromkeys(DEFAULT_PERSONAL_TABLES)
    for table in metadata.tables.values():
        declared = table.info.get("personal_data")
        if declared:
            columns = frozenset(declared) if isinstance(declared, tuple) else None
            assert columns is None or columns <= set(table.columns.keys()), f"{table.name}: {columns}"
            tables[table.name] = columns
    return tables


def masked_tables() -> list[Table]:
    from cityhealth.models import metadata

    return [table for table in metadata.tables.values() if table.info.get("masked_personal_data")]


def _is_id_number(number: str) -> bool:
    check = "10X98765432"[sum(int(c) * w for c, w in zip(number[:17], _WEIGHTS, strict=True)) % 11]
    if check != number[17].upper():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1880 <= born.year <= 2100


def whole_personal_numbers(text: str) -> list[str]:
    """The ID and mobile numbers in `text`, each returned masked (a report must not leak them either)."""
    found = [f"{m[:6]}********{m[-4:]}" for m in _ID_NUMBER.findall(text) if _is_id_number(m)]
    found += [f"{m[:3]}****{m[-4:]}" for m in _MOBILE.findall(text)]
    return found


@dataclass(frozen=True)
class Finding:
    test: str
    where: str
    masked: str


@dataclass
class SuiteRecord:
    """What the whole run saw; tests/conftest.py reports it at the end."""

    current_test: str = "(no test)"
    findings: list[Finding] = field(default_factory=list)
    requests: int = 0
    personal_requests: int = 0
    unaudited: int = 0


RECORD = SuiteRecord()


class LogScanner(logging.Handler):
    """Scans every log record as emitted, before any formatter's scrubbing could hide a careless message."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [record.getMessage(), record.exc_text or ""]
            parts += [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD_LOG_ATTRIBUTES]
        except Exception:  # a malformed record is the logging module's problem, not a finding
            return
        for masked in whole_personal_numbers(" ".join(parts)):
            RECORD.findings.append(Finding(RECORD.current_test, f"log record of {record.name}", masked))


@dataclass
class _Response:
    request_id: str | None = None
    status: int = 0
    is_text: bool = False
    chunks: list[bytes] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


class ResponseScanner:
    """Outermost middleware of a test's app: hands every response to the watch when it completes."""

    def __init__(self, app: ASGIApp, watch: AppWatch) -> None:
        self.app = app
        self.watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = _Response()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.status = int(message["status"])
                for name, value in message.get("headers", []):
                    decoded = value.decode("latin-1")
                    if name.lower() == b"x-request-id":
                        response.request_id = decoded
                    if name.lower() == b"content-type":
                        response.is_text = decoded.startswith(_TEXT_TYPES)
                    response.headers.append(decoded)
            elif message["type"] == "http.response.body":
                response.chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording_send)
        self.watch.response_done(f"{scope['method']} {scope['path']}", response)


class AppWatch:
    """One test's app: which requests touched personal data, and what its responses carried."""

    def __init__(self, app: FastAPI, database: Database, test: str) -> None:
        self.database = database
        self.test = test
        self.tables = personal_tables()
        self._pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, self.tables))) + r")\b")
        self._columns = {table: re.compile(r"\b(" + "|".join(sorted(columns)) + r")\b")
                         for table, columns in self.tables.items() if columns is not None}
        self.touched: dict[str, set[str]] = defaultdict(set)
        self.described: dict[str, str] = {}
        self.suspects: list[tuple[str | None, str, str]] = []  # (request id, where, masked)
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._statement)
        app.add_middleware(ResponseScanner, watch=self)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        request_id = request_id_var.get()
        if request_id is not None:
            lowered = statement.lower()
            for table in self._pattern.findall(lowered):
                columns = self._columns.get(table)
                if columns is None or columns.search(lowered):
                    self.touched[request_id].add(table)

    def response_done(self, request: str, response: _Response) -> None:
        RECORD.requests += 1
        if response.request_id:
            self.described[response.request_id] = f"{request} -> {response.status}"
        texts = list(response.headers)
        if response.is_text:
            texts.append(b"".join(response.chunks).decode("utf-8", errors="replace"))
        for masked in whole_personal_numbers("\n".join(texts)):
            self.suspects.append((response.request_id, f"response to {request}", masked))

    def close(self) -> None:
        event.remove(self.database.engine.sync_engine, "before_cursor_execute", self._statement)

    async def check(self) -> None:
        """Fail the test if a personal-data access went unaudited or whole numbers left unrevealed."""
        wanted = set(self.touched) | {rid for rid, _, _ in self.suspects if rid}
        audited: dict[str, set[str | None]] = defaultdict(set)
        if wanted:
            async with self.database.transaction() as session:
                rows = await session.execute(select(AuditEvent.request_id, AuditEvent.detail)
                                             .where(AuditEvent.request_id.in_(wanted)))
                for request_id, detail in rows:
                    audited[request_id].add(detail)
        problems: list[str] = []
        RECORD.personal_requests += len(self.touched)
        for request_id, tables in sorted(self.touched.items()):
            if request_id not in audited:
                RECORD.unaudited += 1
                problems.append(f"{self.described.get(request_id, request_id)} read or wrote "
                                f"{', '.join(sorted(tables))} but wrote no audit event (call "
                                "security.audit.record, or record_now for a refusal)")
        for request_id, where, masked in self.suspects:
            if request_id is None or REVEALED not in audited.get(request_id, set()):
                RECORD.findings.append(Finding(self.test, where, masked))
                problems.append(f"{where} carries a whole ID or phone number ({masked}) without being "
                                f"audited as detail={REVEALED!r}")
        problems += await self._stored_copies()
        if problems:
            raise AssertionError("security harness:\n  " + "\n  ".join(problems))

    async def _stored_copies(self) -> list[str]:
        problems = []
        for where, masked in await stored_whole_numbers(self.database):
            RECORD.findings.append(Finding(self.test, where, masked))
            problems.append(f"{where} carries a whole ID or phone number ({masked})")
        return problems


async def stored_whole_numbers(database: Database) -> list[tuple[str, str]]:
    """(where, masked number) for each whole number in the rows of tables that keep personal data masked."""
    found = []
    for table in masked_tables():
        try:
            async with database.transaction() as session:
                rows = list(await session.execute(select(table)))
        except DBAPIError:  # a test that left the schema behind (migrations run down): nothing stored
            continue
        for row in rows:
            text = json.dumps(list(row), ensure_ascii=False, default=str)
            found += [(f"a stored row of {table.name}", masked) for masked in whole_personal_numbers(text)]
    return found
