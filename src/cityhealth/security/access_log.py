"""A resident's view of the audit trail: who accessed their record, and when."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import NotFound
from cityhealth.security import repository
from cityhealth.security.audit import Action, record
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal, PrincipalKind
from cityhealth.security.schemas import AccessLogEntry, AccessLogPage, Accessor

MAX_PAGE = 200


def describe_accessor(event: AuditEvent, organization: str | None, viewer: Principal) -> Accessor:
    """The actor as a resident may see it: its kind and organization; account names stay internal."""
    kind = event.actor_kind
    if event.actor == viewer.subject:
        description = "you"
    elif kind == PrincipalKind.STAFF.value:
        description = f"staff of {organization}" if organization else "platform staff"
    elif kind == PrincipalKind.CLIENT.value:
        description = f"information system of {organization}" if organization else "a connected application"
    elif kind == PrincipalKind.RESIDENT.value:
        description = "a resident account"
    elif kind == "operator":
        description = "a platform operator"
    else:
        description = "an unauthenticated caller"
    return Accessor(kind=kind, organization=organization, description=description)


async def access_log(session: AsyncSession, clock: Clock, principal: Principal, *, before: int | None,
                     limit: int) -> AccessLogPage:
    """The caller's own access log, newest first. Only a resident account has one."""
    if principal.kind is not PrincipalKind.RESIDENT or principal.resident_id is None:
        raise NotFound("only a resident account has an access log", code="not_found")
    limit = max(1, min(limit, MAX_PAGE))
    rows = await repository.events_about_resident(session, principal.resident_id, before_id=before, limit=limit)
    items = [AccessLogEntry(id=event.id, occurred_at=event.occurred_at, action=event.action,
                            resource_type=event.resource_type, outcome=event.outcome,
                            accessor=describe_accessor(event, organization, principal))
             for event, organization in rows]
    record(session, clock, principal, Action.READ, "access_log", resident_ids=[principal.resident_id])
    return AccessLogPage(items=items, next_before=items[-1].id if len(items) == limit else None)
