"""No-show sanctions: a configurable rule (default 3 no-shows in 90 days → 90 days without booking, on
every channel) and the staff override, which needs a reason and is audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import repository
from cityhealth.booking.models import Sanction, SanctionRule
from cityhealth.booking.schemas import SanctionRead, SanctionRuleRead, SanctionRuleUpdate
from cityhealth.clock import Clock
from cityhealth.errors import NotFound
from cityhealth.registry.identifiers import ResidentId
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

RULE_ID = 1
NO_SHOW_RULE = "no_show"


async def current_rule(session: AsyncSession) -> SanctionRuleRead:
    row = await session.get(SanctionRule, RULE_ID)
    if row is None:
        return SanctionRuleRead()
    return SanctionRuleRead(no_show_threshold=row.no_show_threshold, window_days=row.window_days,
                            ban_days=row.ban_days)


async def set_rule(session: AsyncSession, clock: Clock, principal: Principal,
                   data: SanctionRuleUpdate) -> SanctionRuleRead:
    now = clock.now()
    row = await session.get(SanctionRule, RULE_ID)
    if row is None:
        session.add(SanctionRule(id=RULE_ID, updated_by=principal.subject, updated_at=now, **data.model_dump()))
    else:
        for name, value in data.model_dump().items():
            setattr(row, name, value)
        row.updated_by, row.updated_at = principal.subject, now
    await session.flush()
    record(session, clock, principal, Action.UPDATE, "booking_sanction_rule", resource_id=RULE_ID,
           detail=data.model_dump_json())
    return await current_rule(session)


async def apply_no_show_rule(tx: AsyncSession, clock: Clock, resident_ids: Iterable[int]) -> list[int]:
    """Ban the residents who reached the rule's no-show count; returns the residents newly banned."""
    rule = await current_rule(tx)
    now = clock.now()
    banned: list[int] = []
    for resident_id in sorted(set(resident_ids)):
        if await repository.has_active_sanction(tx, resident_id, now):
            continue
        # Only no-shows after the last sanction's start count again: a ban is not re-issued for the same ones.
        count = await repository.no_shows_to_count(tx, resident_id, now - timedelta(days=rule.window_days))
        if count >= rule.no_show_threshold:
            tx.add(Sanction(resident_id=resident_id, rule=NO_SHOW_RULE, no_show_count=count, starts_at=now,
                            ends_at=now + timedelta(days=rule.ban_days), created_at=now))
            banned.append(resident_id)
    await tx.flush()
    return banned


async def sanctions_of(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                       target: ResidentId) -> list[SanctionRead]:
    """A resident's sanctions, for staff handling a complaint or an override."""
    resident_id = await repository.resident_by_hash(session, cipher.lookup_hash(ID_NUMBER, target.number))
    if resident_id is None:
        raise NotFound("no master-index resident with this ID number", code="resident_not_found",
                       field="id_number", value=target.masked)
    rows = await repository.sanctions_of(session, resident_id)
    record(session, clock, principal, Action.READ, "booking_sanction", resident_ids=[resident_id])
    return [SanctionRead.model_validate(row) for row in rows]


async def lift(session: AsyncSession, clock: Clock, principal: Principal, sanction_id: int,
               reason: str) -> SanctionRead:
    """Staff override: end a ban early. The reason is kept on the sanction and in the audit trail."""
    row = await session.get(Sanction, sanction_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no sanction {sanction_id}", code="sanction_not_found", field="sanction_id",
                       value=sanction_id)
    if row.lifted_at is None:
        row.lifted_at, row.lifted_by, row.lift_reason = clock.now(), principal.subject, reason
        await session.flush()
        record(session, clock, principal, Action.UPDATE, "booking_sanction", resource_id=row.id,
               resident_ids=[row.resident_id], detail=f"override: {reason}")
    else:
        record(session, clock, principal, Action.READ, "booking_sanction", resource_id=row.id,
               resident_ids=[row.resident_id], detail="already lifted")
    return SanctionRead.model_validate(row)
