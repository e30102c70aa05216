"""The audit trail: who touched whose personal data, when, from where, with what outcome.

Events are queued on the session by `record()` and written, hash-chained, just before the transaction
commits: the chain lock is then held only for the insert and the commit, and an access whose transaction
rolls back leaves no "success" event behind. Denials, which roll back, are written by `record_now()` in a
transaction of their own. Inside an HTTP request that transaction is deferred to the moment the response
starts (see `RequestAudit`): the request's own transaction has ended by then, so on SQLite the denial
does not wait on the write lock the request itself still holds.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from cityhealth.clock import Clock
from cityhealth.db.driver import pg_driver
from cityhealth.db.engine import Database
from cityhealth.request_vars import client_address_var, request_id_var
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal

GENESIS = "0" * 64
# The `detail` of a read that returned whole (unmasked) ID or phone numbers: the owner's own view or an
# explicitly privileged endpoint. The suite's personal-data scan accepts unmasked numbers only with it.
REVEALED = "revealed"
_PENDING = "cityhealth.audit.pending"
# One arbitrary advisory lock key serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK = 0x0C17_7EA1


class Action(StrEnum):
    READ = "read"
    SEARCH = "search"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    DELETE = "delete"
    EXPORT = "export"
    LOGIN = "login"
    LOGOUT = "logout"
    TOKEN = "token"  # noqa: S105 - an action name, not a secret
    DENIED = "denied"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


@dataclass(frozen=True)
class PendingEvent:
    occurred_at: datetime
    actor: str
    actor_kind: str
    on_behalf_of: str | None
    organization_id: int | None
    action: str
    resource_type: str
    resource_id: str | None
    resident_id: int | None
    outcome: str
    request_id: str | None
    source_address: str | None
    detail: str | None


@dataclass
class RequestAudit:
    """What one HTTP request has audited so far, and the denials waiting for its transaction to end."""

    written: int = 0
    # Writes waiting for the request's transaction to end, each run in a transaction of its own.
    deferred: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Set once the response has started: the request's transaction is over, so a later record_now (a
    # streaming body, a background task sharing the context) writes at once instead of being lost.
    closed: bool = False
    # Failed authentications of this request, recorded in bounded form (security/failures.py): counted
    # towards the source address's failure limit, and no generic denial is added for them.
    failed_authentications: int = 0
    # A failed authentication or a 429 recorded that way (counted, perhaps without an audit event).
    authentication_recorded: bool = False

    async def flush(self) -> None:
        """Run the deferred writes in order (including any that a deferred write defers in turn)."""
        while self.deferred:
            batch, self.deferred = self.deferred, []
            for write in batch:
                await write()


# Set by the audit middleware (security/http.py) for the duration of each request.
request_audit_var: contextvars.ContextVar[RequestAudit | None] = contextvars.ContextVar(
    "request_audit", default=None)


def _events(
    clock: Clock,
    principal: Principal | None,
    action: Action,
    resource_type: str,
    resource_id: str | None,
    resident_ids: Iterable[int | None],
    outcome: Outcome,
    detail: str | None,
    actor: str | None,
    actor_kind: str | None = None,
) -> list[PendingEvent]:
    now = clock.now()
    ids: Sequence[int | None] = list(dict.fromkeys(resident_ids)) or [None]
    return [
        PendingEvent(
            occurred_at=now,
            actor=actor or (principal.subject if principal else "anonymous"),
            actor_kind=actor_kind or (principal.kind.value if principal else "anonymous"),
            on_behalf_of=principal.on_behalf_of if principal else None,
            organization_id=principal.organization_id if principal else None,
            action=action.value,
            resource_type=resource_type,
            resource_id=resource_id,
            resident_id=resident_id,
            outcome=outcome.value,
            request_id=request_id_var.get(),
            source_address=client_address_var.get(),
            detail=detail,
        )
        for resident_id in ids
    ]


def record(
    session: AsyncSession,
    clock: Clock,
    principal: Principal | None,
    action: Action,
    resource_type: str,
    *,
    resource_id: str | int | None = None,
    resident_ids: Iterable[int | None] = (),
    outcome: Outcome = Outcome.SUCCESS,
    detail: str | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
) -> None:
    """Queue audit events (one per resident concerned) to be written when `session` commits.

    `actor`/`actor_kind` name a caller that is not a Principal, such as an operator at the CLI.
    """
    pending: list[PendingEvent] = session.sync_session.info.setdefault(_PENDING, [])
    pending.extend(_events(clock, principal, action, resource_type,
                           None if resource_id is None else str(resource_id),
                           resident_ids, outcome, detail, actor, actor_kind))


def record_each(
    session: AsyncSession,
    clock: Clock,
    principal: Principal | None,
    resource_type: str,
    items: Iterable[tuple[Action, int, str | None]],
    *,
    actor: str | None = None,
    actor_kind: str | None = None,
) -> None:
    """Queue one event per (action, resident id, detail), each resident its own event's resource: the trail of a
    bulk write (an import), as `record` would leave it one resident at a time, built without its per-call work."""
    template = _events(clock, principal, Action.CREATE, resource_type, None, (), Outcome.SUCCESS, None, actor,
                       actor_kind)[0]
    pending: list[PendingEvent] = session.sync_session.info.setdefault(_PENDING, [])
    pending.extend(
        PendingEvent(occurred_at=template.occurred_at, actor=template.actor, actor_kind=template.actor_kind,
                     on_behalf_of=template.on_behalf_of, organization_id=template.organization_id,
                     action=action.value, resource_type=resource_type, resource_id=str(resident_id),
                     resident_id=resident_id, outcome=template.outcome, request_id=template.request_id,
                     source_address=template.source_address, detail=detail)
        for action, resident_id, detail in items)


async def record_now(
    database: Database,
    clock: Clock,
    principal: Principal | None,
    action: Action,
    resource_type: str,
    *,
    resource_id: str | int | None = None,
    resident_ids: Iterable[int | None] = (),
    outcome: Outcome = Outcome.DENIED,
    detail: str | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
) -> None:
    """Write audit events in their own transaction (for denials and failed logins, which roll back).

    Within a request the write waits until the request's own transaction has ended (see RequestAudit);
    it still happens before the response reaches the caller.
    """
    events = _events(clock, principal, action, resource_type, None if resource_id is None else str(resource_id),
                     resident_ids, outcome, detail, actor, actor_kind)
    current = request_audit_var.get()
    if current is not None and not current.closed:
        current.deferred.append(functools.partial(write_events, database, events))
        return
    await write_events(database, events)


async def write_events(database: Database, events: list[PendingEvent]) -> None:
    """Append already-built events to the chain in a transaction of their own."""
    async with database.transaction() as session:
        session.sync_session.info.setdefault(_PENDING, []).extend(events)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON: the chain link."""
    return hashlib.sha256(f"{prev_hash}\n{canonical_json(fields)}".encode()).hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


_FIELD_NAMES = tuple(PendingEvent.__dataclass_fields__)


@functools.lru_cache(maxsize=256)
def _utc_text(moment: datetime) -> str:
    # The events of one commit mostly share their instant: converting it once each saves most of hashed_fields.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def hashed_fields(row: PendingEvent | AuditEvent) -> dict[str, Any]:
    fields = {name: getattr(row, name) for name in _FIELD_NAMES}
    fields["occurred_at"] = _utc_text(fields["occurred_at"])
    return fields


_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(:key)")
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]  # a declarative model's table is a Table
_LAST_HASH = select(_EVENTS.c.hash).order_by(_EVENTS.c.id.desc()).limit(1)
_INSERT_EVENTS = insert(_EVENTS)
# PostgreSQL: the chain's head is read and the events are linked to it and inserted in one statement, the
# links computed by the same formula as event_hash() (SHA-256 of the previous hash, a newline and the event's
# canonical JSON, made here in Python). It runs after the chain lock's own statement, never in it: a statement
# sees the rows committed before it started, and the lock may be granted only after another append committed.
_PG_APPEND = text("""
WITH RECURSIVE e AS (
  SELECT * FROM json_to_recordset(convert_from(:document, 'UTF8')::json) AS e(n integer, occurred_at timestamptz,
    actor text, actor_kind text, on_behalf_of text, organization_id integer, action text, resource_type text,
    resource_id text, resident_id integer, outcome text, request_id text, source_address text, detail text,
    canonical text)
), chain(n, prev_hash, hash) AS (
  SELECT 0, NULL::text, coalesce((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1), :genesis)
  UNION ALL
  SELECT e.n, chain.hash, encode(sha256(convert_to(chain.hash || E'\\n' || e.canonical, 'UTF8')), 'hex')
  FROM chain JOIN e ON e.n = chain.n + 1
)
INSERT INTO audit_events (occurred_at, actor, actor_kind, on_behalf_of, organization_id, action, resource_type,
  resource_id, resident_id, outcome, request_id, source_address, detail, prev_hash, hash)
SELECT e.occurred_at, e.actor, e.actor_kind, e.on_behalf_of, e.organization_id, e.action, e.resource_type,
  e.resource_id, e.resident_id, e.outcome, e.request_id, e.source_address, e.detail, chain.prev_hash, chain.hash
FROM e JOIN chain USING (n) ORDER BY n
""")


# json.dumps with these options, built once: dumps builds a new encoder on every call with non-default options.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=_canonical)


def canonical_json(fields: dict[str, Any]) -> str:
    """An event's canonical JSON, the text its chain link hashes."""
    return _CANONICAL_ENCODER.encode(fields)


# PostgreSQL, past _LINK_IN_SQL_MAX events: the links made here (event_hash, after reading the chain's head under
# the lock), the rows inserted in one statement. _PG_APPEND looks each next event up in the whole set, so its cost
# grows with the square of the count: 5,000 events (one import batch) took seconds, against milliseconds here.
_LINK_IN_SQL_MAX = 32
_PG_INSERT_LINKED = text("""
INSERT INTO audit_events (occurred_at, actor, actor_kind, on_behalf_of, organization_id, action, resource_type,
  resource_id, resident_id, outcome, request_id, source_address, detail, prev_hash, hash)
SELECT e.occurred_at, e.actor, e.actor_kind, e.on_behalf_of, e.organization_id, e.action, e.resource_type,
  e.resource_id, e.resident_id, e.outcome, e.request_id, e.source_address, e.detail, e.prev_hash, e.hash
FROM json_to_recordset(convert_from(:document, 'UTF8')::json) AS e(n integer, occurred_at timestamptz, actor text,
  actor_kind text, on_behalf_of text, organization_id integer, action text, resource_type text, resource_id text,
  resident_id integer, outcome text, request_id text, source_address text, detail text, prev_hash text, hash text)
ORDER BY n
""")


def _linked(prev: str, pending: list[PendingEvent]) -> list[tuple[PendingEvent, dict[str, Any], str, str]]:
    """Each event with its hashed fields, its previous link and its own, the chain continuing from `prev`."""
    links = []
    for item in pending:
        fields = hashed_fields(item)
        digest = event_hash(prev, fields)
        links.append((item, fields, prev, digest))
        prev = digest
    return links


# Events per _PG_INSERT_LINKED statement: a parameter is at most 1 GB, and a large import commits millions.
_LINKED_DOCUMENT_EVENTS = 20_000


def _pg_linked_documents(prev: str, pending: list[PendingEvent]) -> Iterator[bytes]:
    """The events as JSON documents for _PG_INSERT_LINKED, in order, each numbered from 1, with their links; sent
    one after another, they append the events in chain order."""
    for start in range(0, len(pending), _LINKED_DOCUMENT_EVENTS):
        links = _linked(prev, pending[start:start + _LINKED_DOCUMENT_EVENTS])
        yield orjson.dumps([{**fields, "n": number, "prev_hash": before, "hash": digest}
                            for number, (_, fields, before, digest) in enumerate(links, start=1)])
        prev = links[-1][3]


def _pg_document(pending: list[PendingEvent]) -> bytes:
    """The events as one JSON document for _PG_APPEND, numbered from 1 in order, each with its canonical text."""
    rows = []
    for number, item in enumerate(pending, start=1):
        fields = hashed_fields(item)
        rows.append({**fields, "n": number, "canonical": canonical_json(fields)})
    return orjson.dumps(rows)


# The same statements for the asyncpg connection itself (write_pending_now).
_PG_LOCK_DRIVER = "SELECT pg_advisory_xact_lock($1)"
_PG_APPEND_DRIVER = _PG_APPEND.text.replace(":document", "$1").replace(":genesis", "$2")
_PG_LAST_HASH_DRIVER = "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1"
_PG_INSERT_LINKED_DRIVER = _PG_INSERT_LINKED.text.replace(":document", "$1")


async def write_pending_now(session: AsyncSession) -> None:
    """Append the events queued on `session` now, on PostgreSQL through the session's asyncpg connection.

    For a transaction whose statements all run on that connection (the real-time upload's group transaction,
    collection/realtime.py), just before it commits: the same lock and the same linking statement as the commit
    hook sends through the adapter, whose execution path cost more CPU than the two round trips themselves.
    The chain lock is still taken last, and held only for the append and the commit. Anywhere else (SQLite, or
    a transaction that may hold an unfinished adapter result) the commit hook writes them, as before.
    """
    info = session.sync_session.info
    pending: list[PendingEvent] | None = info.get(_PENDING)
    if not pending or session.get_bind().dialect.name != "postgresql":
        return
    driver = await pg_driver(session)
    await driver.execute(_PG_LOCK_DRIVER, _CHAIN_LOCK)
    if len(pending) <= _LINK_IN_SQL_MAX:
        await driver.execute(_PG_APPEND_DRIVER, _pg_document(pending), GENESIS)
    else:
        prev = await driver.fetchval(_PG_LAST_HASH_DRIVER) or GENESIS
        for document in _pg_linked_documents(prev, pending):
            await driver.execute(_PG_INSERT_LINKED_DRIVER, document)
    del info[_PENDING]  # written: the commit hook has nothing left to do
    _count_written(len(pending))


def _count_written(events: int) -> None:
    current = request_audit_var.get()
    if current is not None:
        current.written += events


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending: list[PendingEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    # Core statements on the session's own connection: the ORM layer adds nothing here but CPU, and every audited
    # write in the platform passes through this hook while holding the chain lock.
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Two round trips whatever the number of events: the lock, then one statement that links and inserts.
        # (Through the adapter, not the driver directly: a result still open on the connection must finish first.)
        connection.execute(_LOCK_CHAIN, {"key": _CHAIN_LOCK})
        if len(pending) <= _LINK_IN_SQL_MAX:
            connection.execute(_PG_APPEND, {"document": _pg_document(pending), "genesis": GENESIS})
        else:  # the head read after the lock's own statement, as _PG_APPEND reads it
            prev = connection.execute(_LAST_HASH).scalar() or GENESIS
            for document in _pg_linked_documents(prev, pending):
                connection.execute(_PG_INSERT_LINKED, {"document": document})
    else:
        prev = connection.execute(_LAST_HASH).scalar() or GENESIS
        # The event's own fields as they are (dataclasses.asdict deep-copies every value, the times included).
        connection.execute(_INSERT_EVENTS, [
            {**{name: getattr(item, name) for name in _FIELD_NAMES}, "prev_hash": before, "hash": digest}
            for item, _, before, digest in _linked(prev, pending)])
    _count_written(len(pending))


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
