"""The audit trail: who touched whose personal data, when, from where, with what outcome.

Events are queued on the session by `record()` and written, hash-chained, just before the transaction
commits: the chain lock is then held only for the insert and the commit, and an access whose transaction
rolls back leaves no "success" event behind. Denials, which roll back, are written by `record_now()` in a
transaction of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.observability import client_address_var, request_id_var
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal

GENESIS = "0" * 64
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
) -> list[PendingEvent]:
    now = clock.now()
    ids: Sequence[int | None] = list(dict.fromkeys(resident_ids)) or [None]
    return [
        PendingEvent(
            occurred_at=now,
            actor=actor or (principal.subject if principal else "anonymous"),
            actor_kind=principal.kind.value if principal else "anonymous",
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
) -> None:
    """Queue audit events (one per resident concerned) to be written when `session` commits."""
    pending: list[PendingEvent] = session.sync_session.info.setdefault(_PENDING, [])
    pending.extend(_events(clock, principal, action, resource_type,
                           None if resource_id is None else str(resource_id),
                           resident_ids, outcome, detail, actor))


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
) -> None:
    """Write audit events in their own transaction (for denials and failed logins, which roll back)."""
    async with database.transaction() as session:
        record(session, clock, principal, action, resource_type, resource_id=resource_id,
               resident_ids=resident_ids, outcome=outcome, detail=detail, actor=actor)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON: the chain link."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=_canonical)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


def hashed_fields(row: PendingEvent | AuditEvent) -> dict[str, Any]:
    names = PendingEvent.__dataclass_fields__
    fields = {name: getattr(row, name) for name in names}
    fields["occurred_at"] = fields["occurred_at"].astimezone(UTC).isoformat(timespec="microseconds")
    return fields


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending: list[PendingEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    rows = []
    for item in pending:
        digest = event_hash(prev, hashed_fields(item))
        rows.append({**asdict(item), "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(insert(AuditEvent), rows)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
