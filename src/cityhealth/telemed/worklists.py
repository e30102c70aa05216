"""The case lists: a requester's cases, a reading centre's worklist, the overdue lists. Each shows only what
the object rule allows (cases.py): the caller's organization's cases as requester, or as the centre they are
routed to; an administrator's overdue list spans every centre. Every list is audited with its residents."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal
from cityhealth.telemed import repository
from cityhealth.telemed.cases import RESOURCE, read_of
from cityhealth.telemed.models import Case
from cityhealth.telemed.schemas import CaseRead
from cityhealth.telemed.workflow import OPEN_STATUSES


def _listed(session: AsyncSession, clock: Clock, principal: Principal, cases: list[Case], what: str) -> list[CaseRead]:
    residents = {c.resident_id for c in cases if c.resident_id is not None}
    record(
        session,
        clock,
        principal,
        Action.LIST,
        RESOURCE,
        resident_ids=sorted(residents),
        detail=f"{what}: cases={len(cases)}",
    )
    now = clock.now()
    return [read_of(c, now) for c in cases]


async def requester_cases(
    session: AsyncSession, clock: Clock, principal: Principal, *, status: str | None, before_id: int | None, limit: int
) -> list[CaseRead]:
    """The cases the caller's organization submitted, newest first."""
    if principal.organization_id is None:
        return _listed(session, clock, principal, [], "requester")
    found = await repository.requester_cases(session, principal.organization_id, status, before_id, limit)
    return _listed(session, clock, principal, found, "requester")


async def worklist(
    session: AsyncSession, clock: Clock, principal: Principal, *, statuses: tuple[str, ...], limit: int
) -> list[CaseRead]:
    """The reading centre's queue: the cases routed to the caller's organization, the soonest due first."""
    if principal.organization_id is None:
        return _listed(session, clock, principal, [], "worklist")
    found = await repository.centre_queue(session, principal.organization_id, statuses, limit)
    return _listed(session, clock, principal, found, "worklist")


async def overdue(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    *,
    network_code: str | None,
    every_centre: bool,
    limit: int,
) -> list[CaseRead]:
    """Open cases past their turnaround target: the caller's centre's, or (an administrator) every centre's."""
    centre = None if every_centre else principal.organization_id
    if not every_centre and centre is None:
        return _listed(session, clock, principal, [], "overdue")
    found = await repository.overdue(
        session, clock.now(), OPEN_STATUSES, network_code=network_code, centre_organization_id=centre, limit=limit
    )
    return _listed(session, clock, principal, found, "overdue")


# A step's effect: the case's changed columns, and the events that follow the step's own (kind, centre).
