"""Booking administration: the no-show sanction rule, a resident's sanctions and their lifting, the opening
balances migrated from an older platform, and the bulletin's booking statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cityhealth.booking import sanctions, statistics
from cityhealth.booking.api import Admin, AuditedRoute, CipherDep, ClockDep, Editor
from cityhealth.booking.channels import Caller, parse_target_resident
from cityhealth.booking.schemas import (
    OpeningBalanceCreate,
    OpeningBalanceRead,
    ResidentLookup,
    SanctionLift,
    SanctionRead,
    SanctionRuleRead,
    SanctionRuleUpdate,
)
from cityhealth.clock import business_date
from cityhealth.context import SessionDep
from cityhealth.db.types import RowId
from cityhealth.security.principals import Principal

router = APIRouter(prefix="/api/booking", tags=["booking"], route_class=AuditedRoute)


@router.get("/sanction-rule", response_model=SanctionRuleRead)
async def get_sanction_rule(principal: Admin, session: SessionDep) -> SanctionRuleRead:
    return await sanctions.current_rule(session)


@router.put("/sanction-rule", response_model=SanctionRuleRead)
async def put_sanction_rule(principal: Admin, session: SessionDep, clock: ClockDep,
                            data: SanctionRuleUpdate) -> SanctionRuleRead:
    return await sanctions.set_rule(session, clock, principal, data)


@router.post("/sanctions/search", response_model=list[SanctionRead],
             summary="A resident's sanctions (the ID number travels in the body, never the URL)")
async def search_sanctions(principal: Admin, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                           data: ResidentLookup) -> list[SanctionRead]:
    target = parse_target_resident(caller_of_staff(principal), data.id_number, business_date(clock.now()))
    assert target is not None  # noqa: S101 - staff callers always name the resident
    return await sanctions.sanctions_of(session, clock, cipher, principal, target)


def caller_of_staff(principal: Principal) -> Caller:
    return Caller(principal, None, None, None, None)


@router.post("/sanctions/{sanction_id}/lift", response_model=SanctionRead, summary="Staff override of a ban")
async def lift_sanction(principal: Admin, session: SessionDep, clock: ClockDep, sanction_id: RowId,
                        data: SanctionLift) -> SanctionRead:
    return await sanctions.lift(session, clock, principal, sanction_id, data.reason)


@router.post("/opening-balances", response_model=OpeningBalanceRead, status_code=201)
async def record_opening_balance(principal: Admin, session: SessionDep, clock: ClockDep,
                                 data: OpeningBalanceCreate) -> OpeningBalanceRead:
    return await statistics.record_opening_balance(session, clock, principal, data)


@router.get("/statistics", summary="The bulletin's booking section (scenario format)")
async def booking_statistics(principal: Editor, session: SessionDep,
                             month: Annotated[str, Query(description="YYYY-MM")]) -> dict[str, object]:
    return (await statistics.monthly(session, month)).model_dump()

