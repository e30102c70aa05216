"""Chronic disease management API: registers, follow-ups, the overdue list and its calls, monthly indicators."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.records import chronic, chronic_indicators, chronic_overdue
from cityhealth.records.chronic_schemas import (
    CallIn,
    CallRead,
    FollowupIn,
    FollowupRead,
    FollowupUpload,
    IndicatorRow,
    OverdueEntry,
    Program,
    RegistrationIn,
    RegistrationRead,
)
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/records/chronic", tags=["records: chronic disease"],
                   route_class=refusals_audited("chronic_registration"))
Centre = Annotated[Principal, Depends(require(Scope.RECORDS_CHRONIC))]
Uploader = Annotated[Principal, Depends(require(Scope.RECORDS_CHRONIC_UPLOAD))]
Indicators = Annotated[Principal, Depends(require(Scope.RECORDS_INDICATORS))]
Month = Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")]


async def get_cipher(settings: SettingsDep) -> FieldCipher:
    return registry.cipher_for(settings)


CipherDep = Annotated[FieldCipher, Depends(get_cipher)]


class RegistrationDetail(BaseModel):
    registration: RegistrationRead
    followups: list[FollowupRead]


@router.post("/registrations", response_model=RegistrationRead, status_code=201,
             summary="Enter a resident on the centre's hypertension or diabetes register")
async def register(principal: Centre, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                   data: RegistrationIn) -> RegistrationRead:
    return await chronic.register_at_centre(session, clock, cipher, principal, data)


@router.get("/registrations/{registration_id}", response_model=RegistrationDetail,
            summary="A registration and its follow-ups")
async def get_registration(principal: Centre, session: SessionDep, clock: ClockDep,
                           registration_id: RowId) -> RegistrationDetail:
    registration, followups = await chronic.get_registration(session, clock, principal, registration_id)
    return RegistrationDetail(registration=registration, followups=followups)


@router.post("/registrations/{registration_id}/followups", response_model=FollowupRead, status_code=201,
             summary="Record a follow-up (classified; idempotent on its key)")
async def record_followup(principal: Centre, session: SessionDep, clock: ClockDep, registration_id: RowId,
                          data: FollowupIn) -> FollowupRead:
    return await chronic.record_followup(session, clock, principal, registration_id, data)


@router.post("/followup-uploads", response_model=FollowupRead, status_code=201,
             summary="A district platform uploads a public-health follow-up (idempotent on its record id)")
async def upload_followup(principal: Uploader, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                          data: FollowupUpload) -> FollowupRead:
    return await chronic.upload_followup(session, clock, cipher, principal, data)


@router.get("/overdue", response_model=list[OverdueEntry],
            summary="The centre's patients due within a week or overdue (masked, audited)")
async def overdue(principal: Centre, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                  team_id: RowId | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
                  ) -> list[OverdueEntry]:
    return await chronic_overdue.overdue_list(session, clock, cipher, principal, team_id=team_id, limit=limit)


@router.post("/registrations/{registration_id}/calls", response_model=CallRead, status_code=201,
             summary="Record a call from the overdue list (removal with a reason)")
async def record_call(principal: Centre, session: SessionDep, clock: ClockDep, registration_id: RowId,
                      data: CallIn) -> CallRead:
    return await chronic_overdue.record_call(session, clock, principal, registration_id, data)


@router.get("/indicators", response_model=list[IndicatorRow],
            summary="A month's 规范管理率, 控制率 and HEARTS control per area or team")
async def indicators(principal: Indicators, session: SessionDep, month: Month, program: Program,
                     by: Literal["area", "team"] = "area") -> list[IndicatorRow]:
    return await chronic_indicators.indicators(session, month, program, by)
