"""Resident accounts' endpoints: real-name registration against the master patient index, and login.

They live in the registry because the real-name check needs the master index, which sits above security;
the account itself (password, lockout, session, the 3-accounts-per-phone rule) is security's
(security/residents.py). Owned by the security room; the registry's own modules are untouched.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cityhealth.clock import business_date
from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.errors import DomainError, Unauthenticated, ValidationFailed
from cityhealth.registry import service as registry_service
from cityhealth.registry.identifiers import IdentifierError, mask_phone, parse_resident_id
from cityhealth.registry.protection import ID_NUMBER, cipher_for
from cityhealth.security import residents
from cityhealth.security.audit import Action, Outcome, record, record_now
from cityhealth.security.endpoints import limit_auth_attempts, source_address, token_response
from cityhealth.security.principals import PrincipalKind
from cityhealth.security.schemas import ResidentAccountRead, ResidentLogin, ResidentRegistration, TokenResponse

router = APIRouter(prefix="/api/auth/residents", tags=["authentication"])
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def _id_number(value: str, clock: ClockDep) -> str:
    try:
        return parse_resident_id(value, today=business_date(clock.now())).number
    except IdentifierError as exc:
        # The identifiers module's messages carry only the masked number.
        raise ValidationFailed(f"id_number: {exc.message}", field="id_number", rule=exc.rule) from exc


@router.post("/register", status_code=201, response_model=ResidentAccountRead,
             summary="Open a resident account: ID number and name must match the master patient index")
async def register(body: ResidentRegistration, request: Request, settings: SettingsDep, clock: ClockDep,
                   database: DatabaseDep) -> ResidentAccountRead:
    number = _id_number(body.id_number.get_secret_value(), clock)
    phone = body.phone.get_secret_value().strip()
    if not _MOBILE.fullmatch(phone):
        raise ValidationFailed(f"phone: {mask_phone(phone)} is not a mainland mobile number (11 digits, 13-19…)",
                               field="phone", rule="phone.mobile")
    id_hash = cipher_for(settings).lookup_hash(ID_NUMBER, number)
    await limit_auth_attempts(request, settings, clock, database, account=f"resident:{id_hash}")
    matched: int | None = None  # the resident's id (a plain int: the row is gone once a failure rolls back)
    try:
        async with database.transaction() as session:
            resident = await registry_service.resident_for_account(session, id_hash)
            if resident is not None and resident.is_active and resident.name == body.name.strip():
                matched = resident.id
                account = await residents.create_account(session, clock, settings, resident_id=resident.id,
                                                         phone=phone, password=body.password.get_secret_value())
            else:
                # Audited against the resident the ID number names: they can see the attempt in their log.
                record(session, clock, None, Action.CREATE, "resident_account", outcome=Outcome.DENIED,
                       resident_ids=[None if resident is None else resident.id], detail="real_name_mismatch",
                       actor="resident-account:unregistered", actor_kind=PrincipalKind.RESIDENT.value)
    except DomainError as exc:  # 409 (account exists, phone full) or a password refused: rolled back
        await record_now(database, clock, None, Action.CREATE, "resident_account", outcome=Outcome.FAILURE,
                         resident_ids=[matched], detail=exc.code,
                         actor="resident-account:unregistered", actor_kind=PrincipalKind.RESIDENT.value)
        raise
    if matched is None:
        # One answer for "no such ID number" and "name differs": neither can be probed.
        raise ValidationFailed("the ID number and name do not match a resident of the master patient index",
                               code="real_name_check_failed", field="name", rule="real_name.match")
    return ResidentAccountRead(account_id=account.id, resident_id=account.resident_id, phone=mask_phone(phone))


@router.post("/login", response_model=TokenResponse, summary="Resident login with ID number and password")
async def login(body: ResidentLogin, request: Request, settings: SettingsDep, clock: ClockDep,
                database: DatabaseDep) -> JSONResponse:
    number = _id_number(body.id_number.get_secret_value(), clock)
    id_hash = cipher_for(settings).lookup_hash(ID_NUMBER, number)
    await limit_auth_attempts(request, settings, clock, database, account=f"resident:{id_hash}")
    # Its own transaction, committed even when refused: the failure counts towards the lockout.
    async with database.transaction() as session:
        resident = await registry_service.resident_for_account(session, id_hash)
        account = await residents.account_for_login(session, None if resident is None else resident.id)
        result = await residents.login(session, clock, settings, account=account,
                                       password=body.password.get_secret_value(),
                                       source_address=source_address(request))
    if result.principal is None:
        raise Unauthenticated("invalid credentials, or the account is temporarily locked",
                              code="invalid_credentials")
    return token_response(result.principal, settings, clock)
